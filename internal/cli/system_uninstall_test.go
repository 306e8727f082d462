package cli

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"banger/internal/helperapi"
)

var fullUninstall = []string{
	"skipped systemctl: --root is set",
	"removed /etc/systemd/system/banger-helper.service",
	"removed /etc/systemd/user/bangerd.service",
	"not present /run/banger",
	"removed /etc/banger/helper.toml",
	"removed /etc/banger",
	"removed /usr/local/bin/banger",
	"removed /usr/local/bin/bangerd",
	"removed /usr/local/bin/banger-helper",
	"removed /usr/local/bin/banger-guest",
}

var nothingToUninstall = []string{
	"skipped systemctl: --root is set",
	"not present /etc/systemd/system/banger-helper.service",
	"not present /etc/systemd/user/bangerd.service",
	"not present /run/banger",
	"not present /etc/banger/helper.toml",
	"not present /etc/banger",
	"not present /usr/local/bin/banger",
	"not present /usr/local/bin/bangerd",
	"not present /usr/local/bin/banger-helper",
	"not present /usr/local/bin/banger-guest",
}

func TestSystemUninstallLeavesNothingBehind(t *testing.T) {
	f := newSystemFixture(t)
	f.mustRun("install")
	code, stdout, stderr := f.run("uninstall")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	wantLines(t, strings.Split(f.hostView(stdout), "\n")[:len(fullUninstall)], fullUninstall...)
	if !strings.Contains(stdout, "kept VM data: ") {
		t.Errorf("uninstall does not say where VM data is kept:\n%s", stdout)
	}
	if files := f.files(); len(files) != 0 {
		t.Errorf("left behind: %v", files)
	}
	wantLines(t, f.mustRun("uninstall"), nothingToUninstall...)
}

func TestSystemUninstallOneOfTwoUsers(t *testing.T) {
	f := newSystemFixture(t)
	f.mustRun("install")
	f.mustRun("install", "--user", "4202")
	installed := f.files()

	wantLines(t, f.mustRun("uninstall"),
		"removed uid 4201 from /etc/banger/helper.toml",
		"skipped systemctl: --root is set",
		"kept banger-helper, its units and the binaries in /usr/local/bin: still used by uid 4202 (--all-users removes them)",
	)
	cfg, err := helperapi.LoadConfig(f.path(helperapi.DefaultConfigPath))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.AllowedUIDs, []uint32{testUID2}) {
		t.Errorf("allowed_uids = %v, want [%d]", cfg.AllowedUIDs, testUID2)
	}
	if files := f.files(); !slices.Equal(files, installed) {
		t.Errorf("files %v, want %v kept", files, installed)
	}
	// Again: uid 4201 is already gone.
	wantLines(t, f.mustRun("uninstall"),
		"unchanged /etc/banger/helper.toml (uid 4201 was not allowed)",
		"kept banger-helper, its units and the binaries in /usr/local/bin: still used by uid 4202 (--all-users removes them)",
	)
	// The last user takes everything with them.
	wantLines(t, f.mustRun("uninstall", "--user", "4202"), fullUninstall...)
	if files := f.files(); len(files) != 0 {
		t.Errorf("left behind: %v", files)
	}
}

func TestSystemUninstallAllUsers(t *testing.T) {
	f := newSystemFixture(t)
	f.mustRun("install")
	f.mustRun("install", "--user", "4202")
	f.env = nil // plain root: --all-users needs no user
	wantLines(t, f.mustRun("uninstall", "--all-users"), fullUninstall...)
	if files := f.files(); len(files) != 0 {
		t.Errorf("left behind: %v", files)
	}
}

func TestSystemUninstallInvalidHelperConfig(t *testing.T) {
	f := newSystemFixture(t)
	f.mustRun("install")
	cfgPath := f.path(helperapi.DefaultConfigPath)
	f.writeFile(cfgPath, "allowed_uids = \"everyone\"\n", 0o644)
	before := f.tree()
	code, stdout, stderr := f.run("uninstall")
	if code != exitError || !strings.Contains(stderr, "helper config "+cfgPath) || !strings.Contains(stderr, "--all-users") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if stdout != "" || !mapsEqual(before, f.tree()) {
		t.Errorf("uninstall changed something before refusing: %q", stdout)
	}
	wantLines(t, f.mustRun("uninstall", "--all-users"), fullUninstall...)
}

func TestSystemUninstallKeepsWhatIsNotBangers(t *testing.T) {
	f := newSystemFixture(t)
	f.mustRun("install")
	f.writeFile(f.path("/usr/local/bin/banger"), "#!/bin/sh\necho another banger\n", 0o755)
	os.Remove(f.path("/usr/local/bin/bangerd"))
	if err := os.Symlink("/bin/true", f.path("/usr/local/bin/bangerd")); err != nil {
		t.Fatal(err)
	}
	f.writeFile(f.path("/usr/local/bin/firecracker"), "not ours", 0o755)
	f.writeFile(f.path("/etc/banger/notes.txt"), "admin notes", 0o644)

	wantLines(t, f.mustRun("uninstall"),
		"skipped systemctl: --root is set",
		"removed /etc/systemd/system/banger-helper.service",
		"removed /etc/systemd/user/bangerd.service",
		"not present /run/banger",
		"removed /etc/banger/helper.toml",
		"kept /etc/banger (it holds notes.txt, which banger did not write)",
		"kept /usr/local/bin/banger (not a banger binary)",
		"kept /usr/local/bin/bangerd (a symlink, not a binary banger installed)",
		"removed /usr/local/bin/banger-helper",
		"removed /usr/local/bin/banger-guest",
	)
	want := []string{"/etc/banger/notes.txt", "/usr/local/bin/banger", "/usr/local/bin/bangerd", "/usr/local/bin/firecracker"}
	if files := f.files(); !slices.Equal(files, want) {
		t.Errorf("files %v, want %v", files, want)
	}
}

// newSystemdRun is a systemRun that talks to fake systemd directly: with
// --root, systemctl is never run, so the systemd paths are tested here,
// without writing any file.
func newSystemdRun(t *testing.T, sd *fakeSystemd) (*systemRun, *[]string) {
	t.Helper()
	host := systemHost{
		euid:           func() int { return 0 },
		executable:     func() (string, error) { return "", os.ErrNotExist },
		systemdRunning: func() bool { return sd.running },
		systemctl:      sd.systemctl,
	}
	var lines []string
	s := &systemRun{host: host, opts: systemOptions{prefix: defaultPrefix}, user: targetUser{UID: testUID}}
	s.emit = func(a systemAction) { lines = append(lines, a.Message) }
	return s, &lines
}

func TestSystemStartHelper(t *testing.T) {
	tests := []struct {
		name                     string
		sd                       fakeSystemd
		unitChanged, restart     bool
		wantCalls                []string
		wantLines                []string
		wantEnabled, wantRunning bool
	}{
		{
			name: "fresh install", sd: fakeSystemd{running: true}, unitChanged: true, restart: true,
			wantCalls: []string{"daemon-reload", "is-enabled --quiet banger-helper.service", "is-active --quiet banger-helper.service",
				"enable --now banger-helper.service"},
			wantLines: []string{"ran systemctl daemon-reload", "enabled and started banger-helper.service"},
		},
		{
			name: "nothing changed", sd: fakeSystemd{running: true, enabled: true, active: true},
			wantCalls: []string{"is-enabled --quiet banger-helper.service", "is-active --quiet banger-helper.service"},
			wantLines: []string{"unchanged banger-helper.service (enabled and running)"},
		},
		{
			name: "new binary", sd: fakeSystemd{running: true, enabled: true, active: true}, restart: true,
			wantCalls: []string{"is-enabled --quiet banger-helper.service", "is-active --quiet banger-helper.service",
				"restart banger-helper.service"},
			wantLines: []string{"restarted banger-helper.service (its binary, unit or config changed)"},
		},
		{
			name: "stopped by hand", sd: fakeSystemd{running: true, enabled: true},
			wantCalls: []string{"is-enabled --quiet banger-helper.service", "is-active --quiet banger-helper.service",
				"start banger-helper.service"},
			wantLines: []string{"started banger-helper.service"},
		},
		{
			name: "disabled but running, unit changed", sd: fakeSystemd{running: true, active: true}, unitChanged: true, restart: true,
			wantCalls: []string{"daemon-reload", "is-enabled --quiet banger-helper.service", "is-active --quiet banger-helper.service",
				"enable banger-helper.service", "restart banger-helper.service"},
			wantLines: []string{"ran systemctl daemon-reload", "enabled banger-helper.service",
				"restarted banger-helper.service (its binary, unit or config changed)"},
		},
		{
			name: "no systemd", sd: fakeSystemd{}, unitChanged: true, restart: true,
			wantLines: []string{"skipped systemctl: systemd is not running (no /run/systemd/system)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sd := tt.sd
			s, lines := newSystemdRun(t, &sd)
			if err := s.startHelper(context.Background(), tt.unitChanged, tt.restart); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(sd.calls, tt.wantCalls) {
				t.Errorf("systemctl calls %q, want %q", sd.calls, tt.wantCalls)
			}
			wantLines(t, *lines, tt.wantLines...)
			if sd.running && (!sd.enabled || !sd.active) {
				t.Errorf("helper left enabled=%v active=%v", sd.enabled, sd.active)
			}
		})
	}
}

func TestSystemStartHelperWithoutSystemdSaysHow(t *testing.T) {
	s, _ := newSystemdRun(t, &fakeSystemd{})
	if err := s.startHelper(context.Background(), true, true); err != nil {
		t.Fatal(err)
	}
	want := "start the helper by hand, as root: /usr/local/bin/banger-helper --config /etc/banger/helper.toml --socket /run/banger/helper.sock --state /run/banger/helper-state.json"
	if !slices.Contains(s.report.Notes, want) {
		t.Errorf("notes %q lack %q", s.report.Notes, want)
	}
}

func TestSystemDryRunRunsNoSystemctlChange(t *testing.T) {
	sd := &fakeSystemd{running: true}
	s, lines := newSystemdRun(t, sd)
	s.opts.dryRun = true
	if err := s.startHelper(context.Background(), true, true); err != nil {
		t.Fatal(err)
	}
	for _, c := range sd.calls {
		if !strings.HasPrefix(c, "is-") {
			t.Errorf("dry run ran systemctl %s", c)
		}
	}
	wantLines(t, *lines, "would run systemctl daemon-reload", "would enable and start banger-helper.service")
}

func TestSystemStopHelper(t *testing.T) {
	sd := &fakeSystemd{running: true, enabled: true, active: true}
	s, lines := newSystemdRun(t, sd)
	stopped, err := s.stopHelper(context.Background())
	if err != nil || !stopped {
		t.Fatalf("stopHelper = %v, %v", stopped, err)
	}
	if sd.enabled || sd.active {
		t.Errorf("helper left enabled=%v active=%v", sd.enabled, sd.active)
	}
	wantLines(t, *lines, "stopped and disabled banger-helper.service")

	*lines = nil
	if stopped, err := s.stopHelper(context.Background()); err != nil || !stopped {
		t.Fatalf("stopHelper again = %v, %v", stopped, err)
	}
	wantLines(t, *lines, "banger-helper.service is not enabled or running")

	// Without systemd a helper started by hand may still run: its
	// runtime directory is not removed under it.
	s, lines = newSystemdRun(t, &fakeSystemd{})
	if stopped, err := s.stopHelper(context.Background()); err != nil || stopped {
		t.Fatalf("stopHelper without systemd = %v, %v", stopped, err)
	}
	wantLines(t, *lines, "skipped systemctl: systemd is not running (no /run/systemd/system)")
}

func TestSystemRestartHelperForRemovedUser(t *testing.T) {
	sd := &fakeSystemd{running: true, enabled: true, active: true}
	s, lines := newSystemdRun(t, sd)
	if err := s.restartHelper(context.Background(), testUID); err != nil {
		t.Fatal(err)
	}
	wantLines(t, *lines, "restarted banger-helper.service so it stops serving uid 4201")
	if !slices.Contains(sd.calls, "restart banger-helper.service") {
		t.Errorf("calls %q", sd.calls)
	}
}
