package helper

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"banger/internal/errdefs"
	"banger/internal/helperapi"
)

func TestTapNames(t *testing.T) {
	good := map[string]int{"bgtap0": 0, "bgtap7": 7, "bgtap10": 10, "bgtap99999": 99999}
	for name, want := range good {
		if got := tapIndex(name); got != want {
			t.Errorf("tapIndex(%q) = %d, want %d", name, got, want)
		}
		if err := checkTapName(name); err != nil {
			t.Errorf("checkTapName(%q) = %v", name, err)
		}
		if tapName(want) != name {
			t.Errorf("tapName(%d) = %q", want, tapName(want))
		}
	}
	for _, name := range []string{"", "lo", "eth0", "br-fc", "bgtap", "bgtap01", "bgtap-1", "bgtap1;rm -rf /",
		"bgtap/1", "bg tap1", "bgtap 1", "bgtap100000", "bgtap123456789012", "BGTAP1", "bgtap1\n", "bgtap１", "../bgtap1"} {
		if tapIndex(name) != -1 {
			t.Errorf("tapIndex(%q) accepted it", name)
		}
		err := checkTapName(name)
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("checkTapName(%q) = %v, want invalid argument", name, err)
		}
	}
}

func TestGuestIPs(t *testing.T) {
	bridge := netip.MustParsePrefix("172.16.0.1/24")
	for _, ip := range []string{"172.16.0.2", "172.16.0.100", "172.16.0.254"} {
		if _, err := checkGuestIP(ip, bridge); err != nil {
			t.Errorf("checkGuestIP(%s) = %v", ip, err)
		}
	}
	for ip, why := range map[string]string{
		"172.16.0.1":        "bridge",
		"172.16.0.0":        "network",
		"172.16.0.255":      "broadcast",
		"172.16.1.5":        "outside",
		"10.0.0.5":          "outside",
		"8.8.8.8":           "outside",
		"::1":               "not an IPv4",
		"::ffff:172.16.0.5": "not an IPv4",
		"172.16.0.5/32":     "not an IPv4",
		"172.16.0.5;":       "not an IPv4",
		"abc":               "not an IPv4",
		"":                  "not an IPv4",
		"172.016.000.005":   "not an IPv4",
	} {
		_, err := checkGuestIP(ip, bridge)
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), why) {
			t.Errorf("checkGuestIP(%q) = %v, want invalid argument mentioning %q", ip, err, why)
		}
	}
}

// FuzzRequestValidation: whatever a caller sends as a tap name or guest
// IP, what the helper accepts is exactly its own tap form and a host
// address of the bridge network.
func FuzzRequestValidation(f *testing.F) {
	for _, s := range []string{"bgtap0", "bgtap99999", "lo", "bgtap1;x", "172.16.0.2", "172.16.0.255", "::1", "bgtap007"} {
		f.Add(s)
	}
	bridge := netip.MustParsePrefix("172.16.0.1/24")
	f.Fuzz(func(t *testing.T, s string) {
		if checkTapName(s) == nil {
			i := tapIndex(s)
			if i < 0 || tapName(i) != s || len(s) > 15 {
				t.Fatalf("accepted tap name %q (index %d)", s, i)
			}
			if helperapi.ValidInterfaceName(s) != nil {
				t.Fatalf("accepted tap name %q is not a valid interface name", s)
			}
		}
		if addr, err := checkGuestIP(s, bridge); err == nil {
			if !addr.Is4() || !bridge.Masked().Contains(addr) || addr == bridge.Addr() || addr.String() != s {
				t.Fatalf("accepted guest ip %q as %v", s, addr)
			}
		}
	})
}

func TestStateRoundTripAndCorruption(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	st, err := loadState(path)
	if err != nil || len(st.Taps) != 0 {
		t.Fatalf("missing state: %v %+v", err, st)
	}
	st.Taps["bgtap0"] = &tapRecord{Name: "bgtap0", UID: 1000, Ready: true}
	st.NAT["172.16.0.2"] = &natRecord{GuestIP: "172.16.0.2", Tap: "bgtap0", UID: 1000, Bridge: "br-fc", Uplink: "eth0", Ready: true}
	if err := st.save(path); err != nil {
		t.Fatal(err)
	}
	back, err := loadState(path)
	if err != nil || back.Taps["bgtap0"].UID != 1000 || back.NAT["172.16.0.2"].Uplink != "eth0" {
		t.Fatalf("reloaded %+v, %v", back, err)
	}
	if got := back.tapsOf(1000); len(got) != 1 || len(back.tapsOf(1001)) != 0 {
		t.Errorf("tapsOf = %v", got)
	}
	if len(back.natBehind("bgtap0")) != 1 {
		t.Error("natBehind lost the entry")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("save left temp files: %v", entries)
	}
	os.WriteFile(path, []byte("{not json"), 0o600)
	if st, err := loadState(path); err == nil || st == nil || len(st.Taps) != 0 {
		t.Errorf("corrupt state: %+v, %v", st, err)
	}
}
