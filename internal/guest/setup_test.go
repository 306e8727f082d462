package guest

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"banger/internal/guestapi"
)

// fakeSystem records what setup asks of the kernel.
type fakeSystem struct {
	calls      []string
	netErr     error
	mountErr   error
	mountedDir map[string]bool
}

var _ system = (*fakeSystem)(nil)

func (f *fakeSystem) ConfigureNetwork(c guestapi.Config) (string, error) {
	f.calls = append(f.calls, "network "+c.Address.String()+" via "+c.Gateway.String())
	return "eth0", f.netErr
}

func (f *fakeSystem) SetHostname(name string) error {
	f.calls = append(f.calls, "hostname "+name)
	return nil
}

func (f *fakeSystem) MountWorkDisk(device, dir string) (bool, error) {
	f.calls = append(f.calls, "mount "+device)
	if f.mountErr != nil {
		return false, f.mountErr
	}
	if f.mountedDir[dir] {
		return false, nil
	}
	if f.mountedDir == nil {
		f.mountedDir = map[string]bool{}
	}
	f.mountedDir[dir] = true
	return true, nil
}

const testCmdline = "console=ttyS0 reboot=k panic=1 banger.ip=172.16.0.2/24 banger.gw=172.16.0.1 banger.dns=172.16.0.1 banger.hostname=vm1 banger.work=/dev/vdc\n"

// guestRoot is a root filesystem as a banger image and work disk leave
// it, with the work disk's files where mounting it puts them.
func guestRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc/ssh"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("debian\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/hosts"), []byte("127.0.0.1\tlocalhost\n"), 0o644)
	home := filepath.Join(root, guestapi.WorkMountPoint)
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o775)
	os.WriteFile(filepath.Join(root, guestapi.AuthorizedKeysPath), []byte("ssh-ed25519 AAAA daemon\n"), 0o664)
	seedWorkKey(t, root)
	return root
}

func TestRunSetup(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: setup chowns the work disk's files to root")
	}
	root := guestRoot(t)
	sys := &fakeSystem{}
	var log bytes.Buffer
	if err := runSetup(testLog(&log), sys, root, testCmdline); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	want := []string{"network 172.16.0.2/24 via 172.16.0.1", "hostname vm1", "mount /dev/vdc"}
	if !slices.Equal(sys.calls, want) {
		t.Errorf("calls %q, want %q", sys.calls, want)
	}
	for p, want := range map[string]string{
		"etc/hostname":    "vm1\n",
		"etc/hosts":       "127.0.0.1\tlocalhost\n127.0.1.1\tvm1\n",
		"etc/resolv.conf": "# Written by banger-guest from the kernel command line.\nnameserver 172.16.0.1\n",
	} {
		if got := readFile(t, filepath.Join(root, p)); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	checkKeyPair(t, root)
	if m := mode(t, filepath.Join(root, guestapi.AuthorizedKeysPath)); m != 0o600 {
		t.Errorf("authorized_keys mode %v", m)
	}
	for _, line := range []string{"eth0 172.16.0.2/24 via 172.16.0.1", "hostname vm1", "/root mounted /dev/vdc", hostKeyInstalled, "setup: done in"} {
		if !strings.Contains(log.String(), line) {
			t.Errorf("log lacks %q:\n%s", line, log.String())
		}
	}

	// Restarting the unit changes no file.
	before := modTimes(t, filepath.Join(root, "etc"))
	maps.Copy(before, modTimes(t, filepath.Join(root, "etc/ssh")))
	log.Reset()
	if err := runSetup(testLog(&log), sys, root, testCmdline); err != nil {
		t.Fatal(err)
	}
	after := modTimes(t, filepath.Join(root, "etc"))
	maps.Copy(after, modTimes(t, filepath.Join(root, "etc/ssh")))
	if !maps.Equal(before, after) {
		t.Errorf("second run changed files:\n%v\n%v", before, after)
	}
	if !strings.Contains(log.String(), "/root already mounted, 0 ownership/mode fixes") {
		t.Errorf("second run log:\n%s", log.String())
	}
}

func TestRunSetupNotConfigured(t *testing.T) {
	sys := &fakeSystem{}
	var log bytes.Buffer
	if err := runSetup(testLog(&log), sys, t.TempDir(), "console=ttyS0 root=/dev/vda"); err != nil {
		t.Fatal(err)
	}
	if len(sys.calls) != 0 {
		t.Errorf("changed the system: %q", sys.calls)
	}
	if !strings.Contains(log.String(), "nothing to do") {
		t.Errorf("log = %q", log.String())
	}
}

func TestRunSetupBadCmdline(t *testing.T) {
	sys := &fakeSystem{}
	var log bytes.Buffer
	err := runSetup(testLog(&log), sys, t.TempDir(), "banger.ip=300.1.1.1/24 banger.hostname=vm1")
	if err == nil || !strings.Contains(err.Error(), "banger.ip") {
		t.Errorf("err = %v, want one naming banger.ip", err)
	}
	if len(sys.calls) != 0 {
		t.Errorf("changed the system: %q", sys.calls)
	}
}

// TestRunSetupGoesOnAfterFailures checks that a failed step does not stop
// the others, and that every failure is in the error.
func TestRunSetupGoesOnAfterFailures(t *testing.T) {
	root := t.TempDir()
	sys := &fakeSystem{netErr: errors.New("no eth0"), mountErr: errors.New("no /dev/vdc")}
	var log bytes.Buffer
	err := runSetup(testLog(&log), sys, root, testCmdline)
	if err == nil || !strings.Contains(err.Error(), "no eth0") || !strings.Contains(err.Error(), "no /dev/vdc") {
		t.Fatalf("err = %v, want both failures", err)
	}
	if got := readFile(t, filepath.Join(root, "etc/hostname")); got != "vm1\n" {
		t.Errorf("hostname not written after a network failure: %q", got)
	}
	// No key on the (unmounted) work disk and none in the image: sshd
	// still gets one.
	checkKeyPair(t, root)
	if !strings.Contains(log.String(), hostKeyGenerated) {
		t.Errorf("log:\n%s", log.String())
	}
}
