package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestUnprivilegedDaemon runs banger as a user would: bangerd and QEMU as
// an unprivileged uid (nobody here), banger-helper as root doing only the
// bridge, tap and NAT, the tap owned by that uid.
func TestUnprivilegedDaemon(t *testing.T) { forEachDriver(t, testUnprivilegedDaemon) }

func testUnprivilegedDaemon(t *testing.T, drv string) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run banger as another user")
	}
	const nobody = 65534
	// Normally udev makes /dev/net/tun 0666; this container leaves it root's.
	if fi, err := os.Stat("/dev/net/tun"); err == nil && fi.Mode().Perm()&0o006 != 0o006 {
		old := fi.Mode().Perm()
		if err := os.Chmod("/dev/net/tun", 0o666); err != nil {
			t.Skipf("cannot open /dev/net/tun to other users: %v", err)
		}
		t.Cleanup(func() { os.Chmod("/dev/net/tun", old) })
	}
	e := newVMEnvAs(t, nobody, fmt.Sprintf("vmm = %q\n", drv))
	e.must("vm", "create", "--name", "plain", "--nat")
	det := e.show("plain")
	if uid := procUID(t, det.PID); uid != nobody {
		t.Errorf("the VMM (%s) runs as uid %d, want %d", drv, uid, nobody)
	}
	if uid := procUID(t, e.daemonPID()); uid != nobody {
		t.Errorf("bangerd runs as uid %d, want %d", uid, nobody)
	}
	owner := strings.TrimSpace(e.ns.Run(t, "cat", "/sys/class/net/"+det.Runtime.TapDevice+"/owner"))
	if owner != strconv.Itoa(nobody) {
		t.Errorf("tap %s owned by %s", det.Runtime.TapDevice, owner)
	}
	if out := e.exec("plain", "id -u; stat -c '%U %a' /root/.ssh/authorized_keys"); out != "0\nroot 600\n" {
		t.Errorf("in the guest: %q", out)
	}
	e.must("vm", "rm", "--force", "plain")
	if out := e.must("vm", "ls").stdout; !strings.Contains(out, "no VMs") {
		t.Errorf("vm ls: %s", out)
	}
}

func procUID(t *testing.T, pid int) int {
	t.Helper()
	fi, err := os.Stat("/proc/" + strconv.Itoa(pid))
	if err != nil {
		t.Fatalf("pid %d: %v", pid, err)
	}
	return int(fi.Sys().(*syscall.Stat_t).Uid)
}
