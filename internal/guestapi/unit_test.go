package guestapi

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// unitDirectives parses a unit file into "Section.Key" -> values.
func unitDirectives(text string) map[string][]string {
	d := map[string][]string{}
	section := ""
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, _ := strings.Cut(line, "=")
			d[section+"."+k] = append(d[section+"."+k], strings.Fields(v)...)
		}
	}
	return d
}

func TestUnit(t *testing.T) {
	d := unitDirectives(Unit)
	for key, want := range map[string][]string{
		"Unit.DefaultDependencies": {"no"},
		"Unit.After":               {"systemd-remount-fs.service"},
		"Service.Type":             {"oneshot"},
		"Service.RemainAfterExit":  {"yes"},
		"Service.ExecStart":        {GuestBinPath, "setup"},
		"Install.WantedBy":         {"sysinit.target"},
	} {
		if !slices.Equal(d[key], want) {
			t.Errorf("%s = %q, want %q", key, d[key], want)
		}
	}
	for _, before := range []string{"ssh.service", "network-pre.target", "sysinit.target"} {
		if !slices.Contains(d["Unit.Before"], before) {
			t.Errorf("not ordered before %s", before)
		}
	}
	// Nothing that could make the boot wait for a unit a microVM lacks.
	for _, key := range []string{"Unit.Requires", "Unit.BindsTo", "Unit.Requisite", "Unit.RequiresMountsFor"} {
		if len(d[key]) > 0 {
			t.Errorf("%s = %q: setup must only order itself", key, d[key])
		}
	}
	for _, dep := range append(d["Unit.After"], d["Unit.Wants"]...) {
		if strings.HasSuffix(dep, ".device") {
			t.Errorf("depends on %s, which never appears without udev", dep)
		}
	}
	if want := filepath.Join(filepath.Dir(UnitPath), "sysinit.target.wants", UnitName); UnitEnableLink != want {
		t.Errorf("UnitEnableLink = %s, want %s", UnitEnableLink, want)
	}
}

// TestUnitVerifies runs systemd's own checker on the unit when it is
// installed here.
func TestUnitVerifies(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed")
	}
	dir := t.TempDir()
	unit := filepath.Join(dir, UnitName)
	text := strings.Replace(Unit, GuestBinPath, "/bin/true", 1)
	if err := os.WriteFile(unit, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", "--man=no", unit).CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, UnitName) {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
	if err != nil && strings.Contains(string(out), UnitName) {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestMaskedUnits(t *testing.T) {
	// What sshd, journald and banger-guest.service need keep running.
	protected := []string{
		UnitName, "ssh.service", "ssh.socket", "sshd.service",
		"systemd-journald.service", "systemd-journald.socket", "systemd-remount-fs.service",
		"systemd-tmpfiles-setup.service", "systemd-tmpfiles-setup-dev.service",
		"systemd-logind.service", "systemd-udevd.service", "dbus.service",
		"network-pre.target", "sysinit.target", "basic.target", "multi-user.target",
	}
	name := regexp.MustCompile(`^[a-zA-Z0-9:_.@-]+\.(service|timer|socket|target|mount|path)$`)
	seen := map[string]bool{}
	for _, u := range MaskedUnits() {
		if !name.MatchString(u.Name) {
			t.Errorf("%q is not a unit name systemctl mask accepts", u.Name)
		}
		if u.Reason == "" {
			t.Errorf("%s: no reason", u.Name)
		}
		if seen[u.Name] {
			t.Errorf("%s listed twice", u.Name)
		}
		seen[u.Name] = true
		if slices.Contains(protected, u.Name) {
			t.Errorf("masks %s, which the guest needs", u.Name)
		}
	}
	for _, must := range []string{"serial-getty@ttyS0.service", "systemd-udev-settle.service", "systemd-networkd-wait-online.service"} {
		if !seen[must] {
			t.Errorf("%s not masked: the boot waits for it", must)
		}
	}
	if got := MaskedUnitNames(); len(got) != len(MaskedUnits()) || got[0] != MaskedUnits()[0].Name {
		t.Errorf("MaskedUnitNames = %q", got)
	}
}
