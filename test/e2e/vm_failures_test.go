package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"banger/internal/lockfile"
	"banger/internal/sshkey"
)

// TestTwoVMsReachEachOther: two VMs at once, on one bridge, each reaching
// the other's SSH port.
func TestTwoVMsReachEachOther(t *testing.T) { forEachDriver(t, testTwoVMsReachEachOther) }

func testTwoVMsReachEachOther(t *testing.T, drv string) {
	e := newDriverEnv(t, drv, "")
	e.must("vm", "create", "--name", "one")
	e.must("vm", "create", "--name", "two")
	a, b := e.show("one"), e.show("two")
	if a.Runtime.GuestIP == b.Runtime.GuestIP || a.Runtime.MAC == b.Runtime.MAC || a.Runtime.VSockCID == b.Runtime.VSockCID || a.Runtime.TapDevice == b.Runtime.TapDevice {
		t.Fatalf("two VMs share an identity: %+v / %+v", a.Runtime, b.Runtime)
	}
	for _, pair := range [][2]string{{"one", b.Runtime.GuestIP}, {"two", a.Runtime.GuestIP}} {
		out := e.exec(pair[0], "timeout 5 bash -c '</dev/tcp/"+pair[1]+"/22' && echo reached")
		if !strings.Contains(out, "reached") {
			t.Errorf("%s could not reach %s:22: %q", pair[0], pair[1], out)
		}
	}
	ls := e.must("vm", "ls").stdout
	if strings.Count(ls, "running") != 2 {
		t.Errorf("vm ls:\n%s", ls)
	}
}

// TestCreateFailuresLeaveNothing: a create that cannot work fails with a
// clear error and leaves no VM, directory or tap behind.
func TestCreateFailuresLeaveNothing(t *testing.T) { forEachDriver(t, testCreateFailuresLeaveNothing) }

func testCreateFailuresLeaveNothing(t *testing.T, drv string) {
	e := newDriverEnv(t, drv, "")
	if r := e.banger("vm", "create", "--image", "nope"); r.code != 1 || !strings.Contains(r.stderr, `image "nope" does not exist; see 'banger image ls', or build it with 'banger image build --name nope'`) {
		t.Errorf("unknown image: %d %s", r.code, r.stderr)
	}
	if r := e.banger("vm", "create", "--name", "Bad_Name"); r.code != 1 || !strings.Contains(r.stderr, `vm name "Bad_Name" is not a DNS label`) {
		t.Errorf("bad name: %d %s", r.code, r.stderr)
	}
	if r := e.banger("vm", "create", "--memory", "lots"); r.code != 1 || !strings.Contains(r.stderr, `--memory "lots"`) {
		t.Errorf("bad memory: %d %s", r.code, r.stderr)
	}
	if r := e.banger("vm", "create", "--vmm", "firecrackr"); r.code != 1 || !strings.Contains(r.stderr, `--vmm "firecrackr": this bangerd has "firecracker" and "qemu"`) {
		t.Errorf("misspelled --vmm: %d %s", r.code, r.stderr)
	}

	// An image whose kernel is gone: registered, then the kernel removed.
	dir := t.TempDir()
	kernel := filepath.Join(dir, "vmlinux")
	data, _ := os.ReadFile(e.image.Kernel)
	os.WriteFile(kernel, data, 0o644)
	e.must("image", "register", "--name", "gone", "--kernel", kernel, "--rootfs", e.image.Rootfs, "--initrd", e.image.Initrd)
	os.Remove(kernel)
	r := e.banger("vm", "create", "--name", "k", "--image", "gone")
	if r.code != 1 || !strings.Contains(r.stderr, `image "gone": its kernel `+kernel+` is missing`) {
		t.Errorf("missing kernel: %d %s", r.code, r.stderr)
	}

	// A kernel that is there but does not boot: the create fails at boot
	// and takes everything back.
	os.WriteFile(kernel, []byte("not a kernel"), 0o644)
	tapsBefore := len(e.taps())
	r = e.banger("vm", "create", "--name", "k", "--image", "gone")
	if r.code != 1 || !strings.Contains(r.stderr, "vm.create k failed") {
		t.Errorf("unbootable kernel: %d %s", r.code, r.stderr)
	}
	if out := e.must("vm", "ls").stdout; !strings.Contains(out, "no VMs") {
		t.Errorf("a failed create left a VM:\n%s", out)
	}
	vms, _ := os.ReadDir(filepath.Join(e.home, ".local", "share", "banger", "vms"))
	if len(vms) != 0 {
		t.Errorf("a failed create left VM directories: %v", vms)
	}
	if n := len(e.taps()); n > tapsBefore {
		t.Errorf("a failed create left taps: %v", e.taps())
	}
}

// TestVMMKilled: SIGKILL of a VM's VMM (QEMU, or the Firecracker
// process, whose guest dies with it) is noticed, the VM ends stopped
// with the reason, and its tap and NAT are released.
func TestVMMKilled(t *testing.T) { forEachDriver(t, testVMMKilled) }

func testVMMKilled(t *testing.T, drv string) {
	e := newDriverEnv(t, drv, "")
	e.must("vm", "create", "--name", "victim", "--nat")
	det := e.show("victim")
	if det.PID == 0 {
		t.Fatalf("no VMM pid: %+v", det)
	}
	killPID(t, det.PID)
	deadline := time.Now().Add(20 * time.Second)
	for e.show("victim").State == "running" && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	after := e.show("victim")
	if after.State != "stopped" && after.State != "error" {
		t.Fatalf("state after SIGKILL: %s", after.State)
	}
	if !strings.Contains(after.Runtime.LastError, "the VMM exited without banger stopping it") || after.Runtime.TapDevice != "" {
		t.Errorf("after SIGKILL: last error %q, tap %q", after.Runtime.LastError, after.Runtime.TapDevice)
	}
	if rules := e.ns.Run(t, "iptables-save"); strings.Contains(rules, "banger:nat:"+det.Runtime.GuestIP) {
		t.Error("NAT of the killed VM was not removed")
	}
	// It starts again.
	e.must("vm", "start", "victim")
	if out := e.exec("victim", "hostname"); strings.TrimSpace(out) != "victim" {
		t.Errorf("hostname after restart: %q", out)
	}
}

// TestDaemonKilledVMAdopted: SIGKILL of bangerd while a VM runs; the next
// bangerd adopts the VM, which still answers SSH, and can stop it.
func TestDaemonKilledVMAdopted(t *testing.T) { forEachDriver(t, testDaemonKilledVMAdopted) }

func testDaemonKilledVMAdopted(t *testing.T, drv string) {
	e := newDriverEnv(t, drv, "")
	e.must("vm", "create", "--name", "survivor")
	before := e.show("survivor")
	pid := lockfile.ReadPID(filepath.Join(e.run, "banger", "bangerd.lock"))
	if pid == 0 {
		t.Fatal("no bangerd pid")
	}
	killPID(t, pid)
	for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(20 * time.Millisecond)
	}

	// The next command starts a new daemon, which adopts the VM.
	after := e.show("survivor")
	if after.State != "running" || after.PID != before.PID {
		t.Fatalf("after a daemon restart: state %s pid %d, want running pid %d", after.State, after.PID, before.PID)
	}
	if out := e.exec("survivor", "cat /proc/uptime"); out == "" {
		t.Error("the adopted VM does not answer")
	}
	log := e.must("daemon", "logs", "-n", "0").stdout
	if !strings.Contains(log, `"stage":"adopted"`) {
		t.Errorf("the daemon log does not record the adoption")
	}
	// The adopted VMM is watched like any other: killing it is noticed.
	killPID(t, before.PID)
	deadline := time.Now().Add(20 * time.Second)
	for e.show("survivor").State == "running" && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if st := e.show("survivor").State; st != "stopped" {
		t.Errorf("killing the adopted VMM left the VM %s", st)
	}
}

// TestFileSyncSymlinkOutsideHomeRefused: a file sync entry whose host path
// is a symlink leading out of the home is refused, and no VM is made.
func TestFileSyncSymlinkOutsideHomeRefused(t *testing.T) {
	home := t.TempDir()
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("not for guests"), 0o600)
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(home, "innocent"))
	os.WriteFile(filepath.Join(home, "fine"), []byte("hello"), 0o600)
	e := newVMEnv(t, `host_home_dir = "`+home+`"

[[file_sync]]
host = "~/fine"
guest = "~/fine"

[[file_sync]]
host = "~/innocent"
guest = "~/innocent"
`)
	r := e.banger("vm", "create", "--name", "sync")
	if r.code != 1 || !strings.Contains(r.stderr, "file_sync[1] (~/innocent → /root/innocent)") || !strings.Contains(r.stderr, "outside the home directory") {
		t.Fatalf("symlink out of home: %d\n%s", r.code, r.stderr)
	}
	if out := e.must("vm", "ls").stdout; !strings.Contains(out, "no VMs") {
		t.Errorf("the refused create left a VM:\n%s", out)
	}
}

// TestHostKeyChangeRefused: `vm ssh` refuses a VM that answers with a
// host key other than the one banger pinned for it.
func TestHostKeyChangeRefused(t *testing.T) {
	e := newVMEnv(t, "")
	e.must("vm", "create", "--name", "pinned")
	if r := e.banger("vm", "ssh", "pinned", "--", "true"); r.code != 0 {
		t.Fatalf("ssh with the pinned key: %d %s", r.code, r.stderr)
	}
	// Replace the guest's host key, as an impostor at that address would.
	other, _ := sshkey.Generate("impostor")
	e.exec("pinned", "cat > /etc/ssh/ssh_host_ed25519_key <<'EOF'\n"+string(other.PrivatePEM)+"EOF\nchmod 600 /etc/ssh/ssh_host_ed25519_key && systemctl restart ssh")
	time.Sleep(time.Second)
	r := e.banger("vm", "ssh", "pinned", "--", "true")
	if r.code == 0 || !strings.Contains(r.stderr, "HOST IDENTIFICATION HAS CHANGED") && !strings.Contains(r.stderr, "Host key verification failed") {
		t.Errorf("ssh to a VM with a changed host key: exit %d\n%s", r.code, r.stderr)
	}
}
