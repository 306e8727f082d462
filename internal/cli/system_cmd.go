package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"banger/internal/helperapi"
)

// Where `banger system install` puts things, as the host sees them. With
// --root every path is taken under that directory instead.
const (
	helperUnitName  = "banger-helper.service"
	helperUnitPath  = "/etc/systemd/system/" + helperUnitName
	userUnitPath    = "/etc/systemd/user/bangerd.service"
	systemdRunDir   = "/run/systemd/system"
	defaultPrefix   = "/usr/local"
	configDirMode   = 0o755
	configFileMode  = 0o644
	unitFileMode    = 0o644
	binaryFileMode  = 0o755
	binaryBuildHint = "make build"
)

// bangerBinaries are the programs install copies into <prefix>/bin.
var bangerBinaries = []string{"banger", "bangerd", "banger-helper", "banger-guest"}

// systemHost is what `banger system` needs from the machine beyond files
// under the root it writes to. Tests substitute a fake, so neither root
// nor systemd is needed to exercise install and uninstall.
type systemHost struct {
	euid           func() int
	executable     func() (string, error)
	systemdRunning func() bool
	// systemctl runs systemctl with args; an error means it failed or, for
	// is-enabled and is-active, answered no.
	systemctl func(ctx context.Context, args ...string) error
}

func realSystemHost() systemHost {
	return systemHost{
		euid:       os.Geteuid,
		executable: os.Executable,
		systemdRunning: func() bool {
			fi, err := os.Stat(systemdRunDir)
			return err == nil && fi.IsDir()
		},
		systemctl: func(ctx context.Context, args ...string) error {
			out, err := exec.CommandContext(ctx, "systemctl", args...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("systemctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
			}
			return nil
		},
	}
}

// systemOptions are the flags of install and uninstall.
type systemOptions struct {
	user     string
	prefix   string
	root     string
	from     string
	dryRun   bool
	allUsers bool
}

func (a *app) systemCommand() *cobra.Command {
	return a.systemCommandOn(realSystemHost())
}

func (a *app) systemCommandOn(host systemHost) *cobra.Command {
	var opts systemOptions
	cmd := &cobra.Command{
		Use:   "system",
		Short: "Install or remove banger's binaries, root helper and systemd units (run with sudo)",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.PersistentFlags().StringVar(&opts.user, "user", "", "the user who will use banger, by `NAME|UID` (default: the user who ran sudo)")
	cmd.PersistentFlags().StringVar(&opts.prefix, "prefix", defaultPrefix, "install the binaries into `PREFIX`/bin")
	cmd.PersistentFlags().StringVar(&opts.root, "root", "", "treat `DIR` as the filesystem root for every file written or removed, and never run systemctl (for packaging and tests)")
	cmd.PersistentFlags().BoolVar(&opts.dryRun, "dry-run", false, "print what would be done and change nothing")

	install := &cobra.Command{
		Use:   "install",
		Short: "Install banger for a user: binaries, helper config, helper and bangerd units",
		Long: `Install banger system-wide for the user who runs it with sudo:

  - copy banger, bangerd, banger-helper and banger-guest from the directory of this banger
    (or --from DIR) into PREFIX/bin;
  - allow the user's uid in ` + helperapi.DefaultConfigPath + `, keeping its other settings;
  - write the systemd units ` + helperUnitPath + `
    and ` + userUnitPath + `;
  - enable and start banger-helper when systemd is running.

Run it again to upgrade or to add another user; what is already in place is
left alone. Each action is printed on its own line.`,
		Example: "  sudo banger system install\n  sudo banger system install --user alice --dry-run",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runSystem(cmd, host, opts, (*systemRun).install)
		},
	}
	install.Flags().StringVar(&opts.from, "from", "", "copy banger, bangerd, banger-helper and banger-guest from `DIR` (default: the directory of this banger)")

	uninstall := &cobra.Command{
		Use:   "uninstall",
		Short: "Remove a user's access to banger; remove banger when no user is left",
		Long: `Remove the user's uid from ` + helperapi.DefaultConfigPath + `. When no user is left
(or with --all-users), also stop and disable banger-helper, and remove the
units, the helper config and the binaries banger installed in PREFIX/bin.
While other users remain, the helper keeps running for them.

Users' VMs, images and state in their home directories are never touched.`,
		Example: "  sudo banger system uninstall\n  sudo banger system uninstall --all-users",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runSystem(cmd, host, opts, (*systemRun).uninstall)
		},
	}
	uninstall.Flags().BoolVar(&opts.allUsers, "all-users", false, "remove banger for every user, and the helper config outright")

	cmd.AddCommand(install, uninstall)
	return cmd
}

// systemRun is one install or uninstall: its options, where it writes
// and the actions it has taken so far.
type systemRun struct {
	host    systemHost
	opts    systemOptions
	command string // "banger system install"
	user    targetUser
	emit    func(systemAction)
	report  systemReport
}

// systemReport is what --json prints.
type systemReport struct {
	Command string         `json:"command"`
	DryRun  bool           `json:"dry_run"`
	Root    string         `json:"root,omitempty"`
	Prefix  string         `json:"prefix"`
	User    string         `json:"user,omitempty"`
	UID     *uint32        `json:"uid,omitempty"`
	Actions []systemAction `json:"actions"`
	Notes   []string       `json:"notes,omitempty"`
}

// systemAction is one thing install or uninstall did, or found already
// so. Target is a path as the installed system sees it, without --root;
// Message names the file actually written, removed or found, under
// --root when it is set.
type systemAction struct {
	Action  string `json:"action"`
	Target  string `json:"target,omitempty"` // a host path or a unit
	Changed bool   `json:"changed"`
	Message string `json:"message"`
}

// targetUser is the user install allows or uninstall removes.
type targetUser struct {
	UID  uint32
	Name string // "" when the uid has no passwd entry
	Home string
}

// asWho says as whom to run a user's own command (systemctl --user):
// the user, in their own session rather than under sudo.
func (u targetUser) asWho() string {
	if u.UID == 0 {
		return "as root"
	}
	who := fmt.Sprintf("uid %d", u.UID)
	if u.Name != "" {
		who = u.Name
	}
	return "as " + who + " (in their own session, not with sudo)"
}

func (a *app) runSystem(cmd *cobra.Command, host systemHost, opts systemOptions, step func(*systemRun, context.Context) error) error {
	s := &systemRun{host: host, opts: opts, command: cmd.CommandPath()}
	if host.euid() != 0 {
		return fmt.Errorf("%s must run as root: sudo %s", s.command, s.command)
	}
	if err := s.checkPaths(); err != nil {
		return usageError{err, s.command}
	}
	if !opts.allUsers || opts.user != "" {
		u, err := resolveTargetUser(a.getenv, opts.user, s.command)
		if err != nil {
			return err
		}
		s.user = u
		s.report.User, s.report.UID = u.Name, &u.UID
	}
	s.report.Command = cmd.Name()
	s.report.DryRun = opts.dryRun
	s.report.Root = s.opts.root
	s.report.Prefix = s.opts.prefix
	s.report.Actions = []systemAction{}
	s.emit = func(act systemAction) {
		s.report.Actions = append(s.report.Actions, act)
		if !a.jsonOut {
			fmt.Fprintln(a.stdout, act.Message)
		}
	}
	if err := step(s, cmd.Context()); err != nil {
		return err
	}
	if a.jsonOut {
		return a.printJSON(s.report)
	}
	for _, n := range s.report.Notes {
		fmt.Fprintln(a.stdout, n)
	}
	return nil
}

// checkPaths makes --prefix and --root absolute, and keeps --prefix to
// characters that need no quoting in a unit's ExecStart.
func (s *systemRun) checkPaths() error {
	if !filepath.IsAbs(s.opts.prefix) {
		return fmt.Errorf("--prefix must be an absolute path, got %q", s.opts.prefix)
	}
	if strings.ContainsAny(s.opts.prefix, " \t\n\"'\\%$;") {
		return fmt.Errorf("--prefix %q has a character a systemd unit would need quoted", s.opts.prefix)
	}
	s.opts.prefix = filepath.Clean(s.opts.prefix)
	if s.opts.root != "" {
		root, err := filepath.Abs(s.opts.root)
		if err != nil {
			return fmt.Errorf("--root: %w", err)
		}
		s.opts.root = root
	}
	return nil
}

// resolveTargetUser finds the user from --user, else from sudo's
// SUDO_UID/SUDO_USER. Root is refused unless named with --user.
func resolveTargetUser(getenv func(string) string, spec, command string) (targetUser, error) {
	if spec != "" {
		u, err := lookupTargetUser(spec)
		if err != nil {
			return targetUser{}, usageError{fmt.Errorf("--user: %w", err), command}
		}
		if u.UID == 0 && spec != "root" && spec != "0" {
			return targetUser{}, usageError{fmt.Errorf("--user %s is uid 0; pass --user root to allow root explicitly", spec), command}
		}
		return u, nil
	}
	var (
		u   targetUser
		err error
	)
	switch uid, name := getenv("SUDO_UID"), getenv("SUDO_USER"); {
	case uid != "":
		n, perr := strconv.ParseUint(uid, 10, 32)
		if perr != nil {
			return targetUser{}, fmt.Errorf("SUDO_UID=%q is not a uid; pass --user NAME|UID", uid)
		}
		u = targetUser{UID: uint32(n), Name: name}
		if pw, lerr := user.LookupId(uid); lerr == nil {
			u.Home = pw.HomeDir
			if u.Name == "" {
				u.Name = pw.Username
			}
		}
	case name != "":
		if u, err = lookupTargetUser(name); err != nil {
			return targetUser{}, fmt.Errorf("SUDO_USER: %w; pass --user NAME|UID", err)
		}
	default:
		return targetUser{}, usageError{fmt.Errorf("cannot tell which user will use banger: this runs as root but not under sudo; name the user with '%s --user NAME' (or --user UID), or run 'sudo %s' from that user's account", command, command), command}
	}
	if u.UID == 0 {
		return targetUser{}, usageError{fmt.Errorf("refusing to set banger up for root (sudo was run by root): run 'sudo %s' as the user who will use banger, pass --user NAME|UID, or --user root to allow root explicitly", command), command}
	}
	return u, nil
}

// lookupTargetUser resolves a user name or uid. A numeric uid need not
// have a passwd entry: os/user without cgo sees only /etc/passwd.
func lookupTargetUser(spec string) (targetUser, error) {
	if n, err := strconv.ParseUint(spec, 10, 32); err == nil {
		u := targetUser{UID: uint32(n)}
		if pw, err := user.LookupId(spec); err == nil {
			u.Name, u.Home = pw.Username, pw.HomeDir
		}
		return u, nil
	}
	pw, err := user.Lookup(spec)
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return targetUser{}, fmt.Errorf("no user named %q", spec)
		}
		return targetUser{}, fmt.Errorf("look up user %q: %w", spec, err)
	}
	n, err := strconv.ParseUint(pw.Uid, 10, 32)
	if err != nil {
		return targetUser{}, fmt.Errorf("user %q has uid %q, which is not a number", spec, pw.Uid)
	}
	return targetUser{UID: uint32(n), Name: pw.Username, Home: pw.HomeDir}, nil
}

// hostPath is where a host path lives under --root.
func (s *systemRun) hostPath(p string) string {
	return filepath.Join(s.opts.root, p)
}

func (s *systemRun) binPath(name string) string {
	return filepath.Join(s.opts.prefix, "bin", name)
}

// done records an action that changes something; with --dry-run it
// changes nothing and its message says what would be done.
func (s *systemRun) done(action, target, msg, wouldMsg string) {
	if s.opts.dryRun {
		msg = "would " + wouldMsg
	}
	s.emit(systemAction{Action: action, Target: target, Changed: true, Message: msg})
}

// already records that something is already as wanted.
func (s *systemRun) already(action, target, msg string) {
	s.emit(systemAction{Action: action, Target: target, Message: msg})
}

func (s *systemRun) note(format string, args ...any) {
	s.report.Notes = append(s.report.Notes, fmt.Sprintf(format, args...))
}

// systemctlSkipped says why systemctl is not run, or "" when it is.
func (s *systemRun) systemctlSkipped() string {
	switch {
	case s.opts.root != "":
		return "--root is set"
	case !s.host.systemdRunning():
		return "systemd is not running (no " + systemdRunDir + ")"
	}
	return ""
}

// systemctl runs systemctl, or only reports it under --dry-run.
func (s *systemRun) systemctl(ctx context.Context, args ...string) error {
	if s.opts.dryRun {
		return nil
	}
	return s.host.systemctl(ctx, args...)
}

// systemctlYes asks systemctl a yes/no question (is-enabled, is-active);
// it is asked even under --dry-run, since it changes nothing.
func (s *systemRun) systemctlYes(ctx context.Context, question, unit string) bool {
	return s.host.systemctl(ctx, question, "--quiet", unit) == nil
}
