package cli

import (
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"

	"banger/internal/helperapi"
)

// uninstall removes s.user from the helper config. While other users
// remain allowed, the helper, its units and the binaries stay for them;
// when none does, or with --all-users, everything install wrote goes.
func (s *systemRun) uninstall(ctx context.Context) error {
	cfg, found, err := s.loadHelperConfig()
	if err != nil && !s.opts.allUsers {
		return fmt.Errorf("%w (left as it is: fix it, or pass --all-users to remove banger for everyone)", err)
	}
	if err != nil {
		cfg = helperapi.DefaultConfig()
	}
	var remaining []uint32
	if !s.opts.allUsers {
		remaining = slices.DeleteFunc(slices.Clone(cfg.AllowedUIDs), func(u uint32) bool { return u == s.user.UID })
	}
	if found && len(remaining) > 0 {
		return s.removeOneUser(ctx, cfg, remaining)
	}

	helperStopped, err := s.stopHelper(ctx)
	if err != nil {
		return err
	}
	unitRemoved := false
	for _, unit := range []string{helperUnitPath, userUnitPath} {
		removed, err := s.remove(unit)
		if err != nil {
			return err
		}
		unitRemoved = unitRemoved || removed
	}
	if unitRemoved && s.systemctlSkipped() == "" {
		if err := s.systemctl(ctx, "daemon-reload"); err != nil {
			return err
		}
		s.done("reloaded", "", "ran systemctl daemon-reload", "run systemctl daemon-reload")
	}
	// The runtime directory outlives the helper (RuntimeDirectoryPreserve);
	// it goes once the helper is known to be stopped.
	if helperStopped {
		if err := s.removeAll(helperRunDir()); err != nil {
			return err
		}
	}

	if _, err := s.remove(helperapi.DefaultConfigPath); err != nil {
		return err
	}
	if err := s.removeConfigDir(); err != nil {
		return err
	}
	for _, name := range bangerBinaries {
		if err := s.removeBinary(name); err != nil {
			return err
		}
	}

	s.noteKeptData()
	s.note("a user who ran 'systemctl --user enable bangerd' keeps a dangling link: rm ~/.config/systemd/user/default.target.wants/bangerd.service")
	s.note("bangerd daemons and VMs still running are not stopped; the bridge %s stays until reboot (ip link delete %s removes it)", cfg.BridgeName, cfg.BridgeName)
	return nil
}

// removeOneUser drops the user from the helper config and restarts the
// helper so it stops serving them; the rest stays for the other users.
func (s *systemRun) removeOneUser(ctx context.Context, cfg helperapi.Config, remaining []uint32) error {
	path, uid := helperapi.DefaultConfigPath, s.user.UID
	real := s.hostPath(path)
	if len(remaining) == len(cfg.AllowedUIDs) {
		s.already("unchanged", path, fmt.Sprintf("unchanged %s (uid %d was not allowed)", real, uid))
	} else {
		s.done("disallowed", path, fmt.Sprintf("removed uid %d from %s", uid, real), fmt.Sprintf("remove uid %d from %s", uid, real))
		if !s.opts.dryRun {
			cfg.AllowedUIDs = remaining
			if err := s.writeHelperConfig(cfg); err != nil {
				return err
			}
		}
		if err := s.restartHelper(ctx, uid); err != nil {
			return err
		}
	}
	others := make([]string, len(remaining))
	for i, u := range remaining {
		others[i] = fmt.Sprint(u)
	}
	s.already("kept", "", fmt.Sprintf("kept banger-helper, its units and the binaries in %s: still used by uid %s (--all-users removes them)",
		s.hostPath(filepath.Join(s.opts.prefix, "bin")), strings.Join(others, ", ")))
	s.noteKeptData()
	return nil
}

// restartHelper restarts a running helper so it rereads its config.
func (s *systemRun) restartHelper(ctx context.Context, uid uint32) error {
	if why := s.systemctlSkipped(); why != "" {
		s.already("skipped", "", "skipped systemctl: "+why)
		s.note("restart banger-helper so it stops serving uid %d", uid)
		return nil
	}
	if !s.systemctlYes(ctx, "is-active", helperUnitName) {
		return nil
	}
	if err := s.systemctl(ctx, "restart", helperUnitName); err != nil {
		return err
	}
	s.done("restarted", helperUnitName, fmt.Sprintf("restarted %s so it stops serving uid %d", helperUnitName, uid),
		fmt.Sprintf("restart %s so it stops serving uid %d", helperUnitName, uid))
	return nil
}

// stopHelper stops and disables banger-helper; stopped says whether it
// is now known not to run (always so under --root, where nothing runs).
func (s *systemRun) stopHelper(ctx context.Context) (stopped bool, err error) {
	if why := s.systemctlSkipped(); why != "" {
		s.already("skipped", "", "skipped systemctl: "+why)
		if s.opts.root != "" {
			return true, nil
		}
		s.note("stop banger-helper yourself if you started it by hand, then remove %s", helperRunDir())
		return false, nil
	}
	enabled := s.systemctlYes(ctx, "is-enabled", helperUnitName)
	active := s.systemctlYes(ctx, "is-active", helperUnitName)
	if !enabled && !active {
		s.already("unchanged", helperUnitName, helperUnitName+" is not enabled or running")
		return true, nil
	}
	if err := s.systemctl(ctx, "disable", "--now", helperUnitName); err != nil {
		return false, err
	}
	s.done("stopped", helperUnitName, "stopped and disabled "+helperUnitName, "stop and disable "+helperUnitName)
	return true, nil
}

// remove removes one file install wrote, reporting whether it was there.
func (s *systemRun) remove(path string) (bool, error) {
	real := s.hostPath(path)
	there, err := pathExists(real)
	if err != nil || !there {
		if err == nil {
			s.already("not_present", path, "not present "+real)
		}
		return false, err
	}
	s.done("removed", path, "removed "+real, "remove "+real)
	if s.opts.dryRun {
		return true, nil
	}
	_, err = removeFile(real)
	return true, err
}

func (s *systemRun) removeAll(dir string) error {
	real := s.hostPath(dir)
	there, err := pathExists(real)
	if err != nil {
		return err
	}
	if !there {
		s.already("not_present", dir, "not present "+real)
		return nil
	}
	s.done("removed", dir, "removed "+real, "remove "+real)
	if s.opts.dryRun {
		return nil
	}
	return os.RemoveAll(real)
}

// removeConfigDir removes /etc/banger unless something else is in it.
func (s *systemRun) removeConfigDir() error {
	dir := filepath.Dir(helperapi.DefaultConfigPath)
	real := s.hostPath(dir)
	entries, err := os.ReadDir(real)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.already("not_present", dir, "not present "+real)
		return nil
	case err != nil:
		return err
	}
	others := slices.DeleteFunc(entries, func(e fs.DirEntry) bool {
		return e.Name() == filepath.Base(helperapi.DefaultConfigPath)
	})
	if len(others) > 0 {
		s.already("kept", dir, fmt.Sprintf("kept %s (it holds %s, which banger did not write)", real, others[0].Name()))
		return nil
	}
	s.done("removed", dir, "removed "+real, "remove "+real)
	if s.opts.dryRun {
		return nil
	}
	return os.Remove(real)
}

// removeBinary removes <prefix>/bin/name if it is a banger binary: a Go
// program of this module. Anything else of that name is not banger's.
func (s *systemRun) removeBinary(name string) error {
	path := s.binPath(name)
	real := s.hostPath(path)
	fi, err := os.Lstat(real)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.already("not_present", path, "not present "+real)
		return nil
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		s.already("kept", path, fmt.Sprintf("kept %s (a %s, not a binary banger installed)", real, describeType(fi.Mode())))
		return nil
	case !isBangerBinary(real):
		s.already("kept", path, fmt.Sprintf("kept %s (not a banger binary)", real))
		return nil
	}
	s.done("removed", path, "removed "+real, "remove "+real)
	if s.opts.dryRun {
		return nil
	}
	_, err = removeFile(real)
	return err
}

// isBangerBinary reports whether path is a Go binary built from the same
// module as this one.
func isBangerBinary(path string) bool {
	bi, err := buildinfo.ReadFile(path)
	return err == nil && bi.Main.Path == bangerModule()
}

func bangerModule() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Path != "" {
		return bi.Main.Path
	}
	return "banger"
}

// noteKeptData says where the user's VMs are: uninstall never touches
// them.
func (s *systemRun) noteKeptData() {
	if s.user.Home == "" {
		s.note("kept VM data: each user's VMs and images stay in ~/.local/share/banger, and state in ~/.local/state/banger")
		return
	}
	s.note("kept VM data: %s's VMs and images stay in %s, and state in %s (default locations)", s.user.Name,
		filepath.Join(s.user.Home, ".local", "share", "banger"), filepath.Join(s.user.Home, ".local", "state", "banger"))
}
