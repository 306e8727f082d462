package cli

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"banger/internal/helperapi"
)

const wantHelperUnit = `# Installed by 'banger system install'; 'banger system uninstall' removes it.
[Unit]
Description=banger helper: bridge, taps, NAT and dm-snapshot overlays for banger microVMs
After=network.target

[Service]
Type=simple
ExecStart=/usr/local/bin/banger-helper --config /etc/banger/helper.toml --socket /run/banger/helper.sock --state /run/banger/helper-state.json
Restart=on-failure
RestartSec=1
# /run/banger holds the socket and the state file. It outlives a restart,
# so the new helper can reconcile the taps and NAT rules the state lists.
RuntimeDirectory=banger
RuntimeDirectoryMode=0755
RuntimeDirectoryPreserve=yes
NoNewPrivileges=yes
ProtectSystem=full
ProtectHome=yes
PrivateTmp=yes
ProtectControlGroups=yes
LockPersonality=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes

[Install]
WantedBy=multi-user.target
`

const wantUserUnit = `# Installed by 'banger system install'; 'banger system uninstall' removes it.
# Enable it as your own user with: systemctl --user enable --now bangerd
# (banger also starts bangerd on demand when it is not running).
[Unit]
Description=bangerd: banger's per-user daemon

[Service]
Type=simple
ExecStart=/usr/local/bin/bangerd
Restart=on-failure
RestartSec=2

[Install]
WantedBy=default.target
`

var freshInstall = []string{
	"installed /usr/local/bin/banger",
	"installed /usr/local/bin/bangerd",
	"installed /usr/local/bin/banger-helper",
	"installed /usr/local/bin/banger-guest",
	"created /etc/banger/helper.toml allowing uid 4201",
	"installed /etc/systemd/system/banger-helper.service",
	"installed /etc/systemd/user/bangerd.service",
	"skipped systemctl: --root is set",
}

var unchangedInstall = []string{
	"unchanged /usr/local/bin/banger",
	"unchanged /usr/local/bin/bangerd",
	"unchanged /usr/local/bin/banger-helper",
	"unchanged /usr/local/bin/banger-guest",
	"unchanged /etc/banger/helper.toml (uid 4201 already allowed)",
	"unchanged /etc/systemd/system/banger-helper.service",
	"unchanged /etc/systemd/user/bangerd.service",
	"skipped systemctl: --root is set",
}

func TestSystemInstallWritesFilesWithModes(t *testing.T) {
	f := newSystemFixture(t)
	code, stdout, stderr := f.run("install")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	wantLines(t, strings.Split(f.hostView(stdout), "\n")[:len(freshInstall)], freshInstall...)
	for _, note := range []string{
		"systemctl daemon-reload && systemctl enable --now banger-helper.service",
		"to start bangerd at login, run as alice (in their own session, not with sudo): systemctl --user enable --now bangerd (banger also starts bangerd on demand)",
	} {
		if !strings.Contains(stdout, note) {
			t.Errorf("stdout lacks %q:\n%s", note, stdout)
		}
	}

	exe, _ := os.Executable()
	exeData, _ := os.ReadFile(exe)
	files := map[string]fs.FileMode{
		"/usr/local/bin/banger":                     0o755,
		"/usr/local/bin/bangerd":                    0o755,
		"/usr/local/bin/banger-helper":              0o755,
		"/usr/local/bin/banger-guest":               0o755,
		"/etc/banger":                               fs.ModeDir | 0o755,
		"/etc/banger/helper.toml":                   0o644,
		"/etc/systemd/system/banger-helper.service": 0o644,
		"/etc/systemd/user/bangerd.service":         0o644,
	}
	for p, mode := range files {
		fi, err := os.Stat(f.path(p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if fi.Mode() != mode {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode(), mode)
		}
		if !ownedByUs(fi) {
			t.Errorf("%s is not owned by the installing user", p)
		}
		if strings.HasPrefix(p, "/usr/local/bin/") {
			if data, _ := os.ReadFile(f.path(p)); !slices.Equal(data, exeData) {
				t.Errorf("%s is not a copy of its source", p)
			}
		}
	}
	if got := f.files(); len(got) != 7 {
		t.Errorf("files under root: %v, want the 4 binaries, helper.toml and 2 units (no temporary files)", got)
	}

	for p, want := range map[string]string{helperUnitPath: wantHelperUnit, userUnitPath: wantUserUnit} {
		if data, _ := os.ReadFile(f.path(p)); string(data) != want {
			t.Errorf("%s:\n%s\nwant:\n%s", p, data, want)
		}
	}
	cfg, err := helperapi.LoadConfig(f.path(helperapi.DefaultConfigPath))
	if err != nil {
		t.Fatal(err)
	}
	want := helperapi.DefaultConfig()
	want.AllowedUIDs = []uint32{testUID}
	if !configsEqual(cfg, want) {
		t.Errorf("helper config %+v, want %+v", cfg, want)
	}
}

func configsEqual(a, b helperapi.Config) bool {
	return slices.Equal(a.AllowedUIDs, b.AllowedUIDs) && a.BridgeName == b.BridgeName && a.BridgeIP == b.BridgeIP &&
		a.CIDR == b.CIDR && a.MaxTapsPerUID == b.MaxTapsPerUID
}

func TestSystemInstallIsIdempotent(t *testing.T) {
	f := newSystemFixture(t)
	wantLines(t, f.mustRun("install"), freshInstall...)
	before := f.tree()
	wantLines(t, f.mustRun("install"), unchangedInstall...)
	if after := f.tree(); !mapsEqual(before, after) {
		t.Errorf("second install changed the tree:\n%v\n%v", before, after)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestSystemInstallUpdatesWhatChanged(t *testing.T) {
	f := newSystemFixture(t)
	f.mustRun("install")
	// A new build of bangerd, and a unit someone edited by hand.
	fh, err := os.OpenFile(filepath.Join(f.src, "bangerd"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteString("new build")
	fh.Close()
	f.writeFile(f.path(helperUnitPath), "[Service]\nExecStart=/bin/false\n", 0o644)
	os.Chmod(f.path("/usr/local/bin/banger"), 0o700)

	wantLines(t, f.mustRun("install"),
		"updated /usr/local/bin/banger",
		"updated /usr/local/bin/bangerd",
		"unchanged /usr/local/bin/banger-helper",
		"unchanged /usr/local/bin/banger-guest",
		"unchanged /etc/banger/helper.toml (uid 4201 already allowed)",
		"updated /etc/systemd/system/banger-helper.service",
		"unchanged /etc/systemd/user/bangerd.service",
		"skipped systemctl: --root is set",
	)
	if same, _ := sameFiles(filepath.Join(f.src, "bangerd"), f.path("/usr/local/bin/bangerd")); !same {
		t.Error("bangerd was not updated")
	}
	if data, _ := os.ReadFile(f.path(helperUnitPath)); string(data) != wantHelperUnit {
		t.Errorf("helper unit not restored:\n%s", data)
	}
	if fi, _ := os.Stat(f.path("/usr/local/bin/banger")); fi.Mode().Perm() != 0o755 {
		t.Errorf("banger mode %v, want 0755", fi.Mode())
	}
}

func TestSystemInstallSecondUserKeepsSettings(t *testing.T) {
	f := newSystemFixture(t)
	f.writeFile(f.path(helperapi.DefaultConfigPath), "allowed_uids = [4201]\nbridge_name = \"br-test\"\nmax_taps_per_uid = 8\n", 0o644)
	f.mustRun("install")

	f.env = map[string]string{"SUDO_UID": "4202", "SUDO_USER": "bob"}
	wantLines(t, f.mustRun("install"),
		"unchanged /usr/local/bin/banger",
		"unchanged /usr/local/bin/bangerd",
		"unchanged /usr/local/bin/banger-helper",
		"unchanged /usr/local/bin/banger-guest",
		"allowed uid 4202 in /etc/banger/helper.toml",
		"unchanged /etc/systemd/system/banger-helper.service",
		"unchanged /etc/systemd/user/bangerd.service",
		"skipped systemctl: --root is set",
	)
	cfg, err := helperapi.LoadConfig(f.path(helperapi.DefaultConfigPath))
	if err != nil {
		t.Fatal(err)
	}
	want := helperapi.DefaultConfig()
	want.AllowedUIDs, want.BridgeName, want.MaxTapsPerUID = []uint32{testUID, testUID2}, "br-test", 8
	if !configsEqual(cfg, want) {
		t.Errorf("helper config %+v, want %+v", cfg, want)
	}
	// --user overrides sudo's user, and adding someone twice does nothing.
	if lines := f.mustRun("install", "--user", "4201"); lines[4] != "unchanged /etc/banger/helper.toml (uid 4201 already allowed)" {
		t.Errorf("re-adding uid 4201: %q", lines[4])
	}
}

func TestSystemInstallRefusesInvalidHelperConfig(t *testing.T) {
	for name, content := range map[string]string{
		"syntax":      "allowed_uids = [\n",
		"unknown key": "allowed_uids = [1]\nbridge = \"x\"\n",
		"bad value":   "cidr = \"99\"\n",
	} {
		t.Run(name, func(t *testing.T) {
			f := newSystemFixture(t)
			cfgPath := f.path(helperapi.DefaultConfigPath)
			f.writeFile(cfgPath, content, 0o600)
			code, stdout, stderr := f.run("install")
			if code != exitError {
				t.Errorf("exit %d, want %d", code, exitError)
			}
			if !strings.Contains(stderr, "helper config "+cfgPath) || !strings.Contains(stderr, "left as it is") {
				t.Errorf("stderr does not name %s: %q", cfgPath, stderr)
			}
			if stdout != "" {
				t.Errorf("something was done before refusing: %q", stdout)
			}
			if data, _ := os.ReadFile(cfgPath); string(data) != content {
				t.Errorf("invalid config was rewritten: %q", data)
			}
			if got := f.files(); !slices.Equal(got, []string{helperapi.DefaultConfigPath}) {
				t.Errorf("files under root: %v", got)
			}
		})
	}
}

func TestSystemInstallDryRunChangesNothing(t *testing.T) {
	f := newSystemFixture(t)
	wantLines(t, f.mustRun("install", "--dry-run"),
		"would install /usr/local/bin/banger",
		"would install /usr/local/bin/bangerd",
		"would install /usr/local/bin/banger-helper",
		"would install /usr/local/bin/banger-guest",
		"would create /etc/banger/helper.toml allowing uid 4201",
		"would install /etc/systemd/system/banger-helper.service",
		"would install /etc/systemd/user/bangerd.service",
		"skipped systemctl: --root is set",
	)
	if tree := f.tree(); len(tree) != 0 {
		t.Errorf("dry run wrote %v", tree)
	}

	f.mustRun("install")
	before := f.tree()
	f.env["SUDO_UID"] = "4202"
	if lines := f.mustRun("install", "--dry-run"); lines[4] != "would allow uid 4202 in /etc/banger/helper.toml" {
		t.Errorf("dry run of a second user: %q", lines[4])
	}
	wantLines(t, f.mustRun("uninstall", "--dry-run", "--user", "4201"),
		"skipped systemctl: --root is set",
		"would remove /etc/systemd/system/banger-helper.service",
		"would remove /etc/systemd/user/bangerd.service",
		"not present /run/banger",
		"would remove /etc/banger/helper.toml",
		"would remove /etc/banger",
		"would remove /usr/local/bin/banger",
		"would remove /usr/local/bin/bangerd",
		"would remove /usr/local/bin/banger-helper",
		"would remove /usr/local/bin/banger-guest",
	)
	if after := f.tree(); !mapsEqual(before, after) {
		t.Errorf("dry runs changed the tree:\n%v\n%v", before, after)
	}
}

func TestSystemInstallPrefixAndFrom(t *testing.T) {
	f := newSystemFixture(t)
	from := f.src
	f.src = t.TempDir() // the running banger is elsewhere, without siblings
	lines := f.mustRun("install", "--prefix", "/opt/banger", "--from", from)
	if lines[0] != "installed /opt/banger/bin/banger" {
		t.Errorf("first action %q", lines[0])
	}
	unit, _ := os.ReadFile(f.path(helperUnitPath))
	if !strings.Contains(string(unit), "\nExecStart=/opt/banger/bin/banger-helper --config") {
		t.Errorf("helper unit does not run the prefix's helper:\n%s", unit)
	}
	unit, _ = os.ReadFile(f.path(userUnitPath))
	if !strings.Contains(string(unit), "\nExecStart=/opt/banger/bin/bangerd\n") {
		t.Errorf("user unit does not run the prefix's bangerd:\n%s", unit)
	}
}

func TestSystemInstallSameFileIsSkipped(t *testing.T) {
	f := newSystemFixture(t)
	f.mustRun("install")
	// Run "from" the installed copies, as /usr/local/bin/banger would.
	f.src = f.path("/usr/local/bin")
	lines := f.mustRun("install")
	if lines[0] != "unchanged /usr/local/bin/banger (it is the binary being installed)" {
		t.Errorf("first action %q", lines[0])
	}
}

func TestSystemInstallJSON(t *testing.T) {
	f := newSystemFixture(t)
	code, stdout, stderr := f.run("install", "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep systemReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if rep.Command != "install" || rep.User != "alice" || rep.UID == nil || *rep.UID != testUID || rep.Root != f.root || rep.DryRun {
		t.Errorf("report header %+v", rep)
	}
	first := rep.Actions[0]
	if first != (systemAction{Action: "installed", Target: "/usr/local/bin/banger", Changed: true, Message: "installed " + f.path("/usr/local/bin/banger")}) {
		t.Errorf("first action %+v", first)
	}
	if len(rep.Notes) == 0 {
		t.Error("no notes")
	}
}

func TestSystemErrors(t *testing.T) {
	tests := []struct {
		name string
		euid int
		env  map[string]string
		args []string
		code int
		err  string
	}{
		{"not root", 1000, map[string]string{"SUDO_UID": "1000"}, []string{"install"}, exitError,
			"banger system install must run as root: sudo banger system install"},
		{"not root uninstall", 1000, nil, []string{"uninstall"}, exitError,
			"banger system uninstall must run as root: sudo banger system uninstall"},
		{"no user", 0, nil, []string{"install"}, exitUsage,
			"cannot tell which user will use banger: this runs as root but not under sudo; name the user with 'banger system install --user NAME' (or --user UID), or run 'sudo banger system install' from that user's account"},
		{"no user uninstall", 0, nil, []string{"uninstall"}, exitUsage, "cannot tell which user will use banger"},
		{"sudo by root", 0, map[string]string{"SUDO_UID": "0", "SUDO_USER": "root"}, []string{"install"}, exitUsage,
			"refusing to set banger up for root"},
		{"bad SUDO_UID", 0, map[string]string{"SUDO_UID": "x"}, []string{"install"}, exitError, `SUDO_UID="x" is not a uid`},
		{"unknown user", 0, nil, []string{"install", "--user", "no-such-user-here"}, exitUsage, `--user: no user named "no-such-user-here"`},
		{"relative prefix", 0, map[string]string{"SUDO_UID": "1000"}, []string{"install", "--prefix", "usr"}, exitUsage,
			`--prefix must be an absolute path, got "usr"`},
		{"prefix with space", 0, map[string]string{"SUDO_UID": "1000"}, []string{"install", "--prefix", "/opt/my banger"}, exitUsage,
			"has a character a systemd unit would need quoted"},
		{"stray argument", 0, map[string]string{"SUDO_UID": "1000"}, []string{"install", "now"}, exitUsage, "takes no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSystemFixture(t)
			f.euid, f.env = tt.euid, tt.env
			code, stdout, stderr := f.run(tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.err) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.code, tt.err)
			}
			if stdout != "" || len(f.tree()) != 0 {
				t.Errorf("something was done: stdout %q, tree %v", stdout, f.tree())
			}
		})
	}
}

func TestSystemInstallRootNeedsExplicitUser(t *testing.T) {
	for _, user := range []string{"root", "0"} {
		f := newSystemFixture(t)
		f.env = nil
		if lines := f.mustRun("install", "--user", user); lines[4] != "created /etc/banger/helper.toml allowing uid 0" {
			t.Errorf("--user %s: %q", user, lines[4])
		}
	}
	// The last note says as whom to enable bangerd, without
	// contradicting itself.
	f := newSystemFixture(t)
	f.env = nil
	_, stdout, _ := f.run("install", "--user", "root")
	notes := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if last := notes[len(notes)-1]; last != "to start bangerd at login, run as root: systemctl --user enable --now bangerd (banger also starts bangerd on demand)" {
		t.Errorf("last line %q", last)
	}
}

func TestSystemInstallMissingBinary(t *testing.T) {
	f := newSystemFixture(t)
	os.Remove(filepath.Join(f.src, "banger-helper"))
	code, stdout, stderr := f.run("install")
	want := "banger-helper not found in " + f.src + ": run 'make build' first, or pass --from DIR"
	if code != exitError || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stderr %q; want %q", code, stderr, want)
	}
	if stdout != "" || len(f.tree()) != 0 {
		t.Errorf("something was done: %q", stdout)
	}
}

func TestSystemInstallSecuresConfigDir(t *testing.T) {
	f := newSystemFixture(t)
	if err := os.MkdirAll(f.path("/etc/banger"), 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(f.path("/etc/banger"), 0o777)
	lines := f.mustRun("install")
	if !slices.Contains(lines, "set owner uid "+strconv.Itoa(os.Geteuid())+" and mode 0755 on /etc/banger") {
		t.Errorf("world-writable /etc/banger not fixed: %q", lines)
	}
	if fi, _ := os.Stat(f.path("/etc/banger")); fi.Mode().Perm() != 0o755 {
		t.Errorf("/etc/banger mode %v", fi.Mode())
	}
}
