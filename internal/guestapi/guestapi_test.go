package guestapi

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestCmdlineRoundTrip(t *testing.T) {
	c := Config{
		Address:  netip.MustParsePrefix("172.16.0.2/24"),
		Gateway:  netip.MustParseAddr("172.16.0.1"),
		DNS:      netip.MustParseAddr("172.16.0.1"),
		Hostname: "dev-1",
	}
	line, err := c.Cmdline()
	if err != nil {
		t.Fatal(err)
	}
	if line != "banger.ip=172.16.0.2/24 banger.gw=172.16.0.1 banger.dns=172.16.0.1 banger.hostname=dev-1" {
		t.Errorf("Cmdline = %q", line)
	}
	full := "console=ttyS0 reboot=k root=/dev/vda rw " + line + " tsc=reliable"
	back, err := ParseCmdline(full)
	if err != nil || back != c {
		t.Errorf("ParseCmdline = %+v, %v; want %+v", back, err, c)
	}
	if back.Work() != DefaultWorkDevice {
		t.Errorf("Work() = %q", back.Work())
	}
}

func TestParseCmdlineErrors(t *testing.T) {
	if _, err := ParseCmdline("console=ttyS0 root=/dev/vda"); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("no banger keys: %v", err)
	}
	for line, want := range map[string]string{
		"banger.ip=300.1.1.1/24 banger.hostname=a":                        "banger.ip",
		"banger.ip=172.16.0.2 banger.hostname=a":                          "banger.ip",
		"banger.ip=172.16.0.2/24 banger.hostname=Bad_Name":                "hostname",
		"banger.ip=172.16.0.2/24 banger.hostname=a banger.gw=10.0.0.1":    "gateway",
		"banger.ip=172.16.0.2/24 banger.hostname=a banger.color=red":      "unknown key",
		"banger.ip=172.16.0.2/24 banger.hostname=a banger.work=/etc/x\"y": "work device",
		"banger.ip=fd00::2/64 banger.hostname=a":                          "IPv4",
	} {
		if _, err := ParseCmdline(line); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseCmdline(%q) = %v, want an error about %s", line, err, want)
		}
	}
}
