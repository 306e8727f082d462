package qemu

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"banger/internal/guestapi"
	"banger/internal/sshkey"
	"banger/internal/testutil/guestboot"
	"banger/internal/testutil/netns"
	"banger/internal/testutil/testimage"
	"banger/internal/vmm"
)

// bootedVM is a real guest the driver started.
type bootedVM struct {
	h       vmm.Handle
	spec    vmm.Spec
	addr    netip.Addr
	client  sshkey.Key
	host    sshkey.Key
	gone    chan struct{} // closed when QEMU has exited
	started time.Time
}

// bootVM starts the test image with the driver on a new tap in n: the
// root disk a sparse copy of the image's (the cached image is never
// written), the work disk made as banger makes it, with the test's keys.
func bootVM(t *testing.T, d *Driver, n *guestboot.Network, img testimage.Image, name string) *bootedVM {
	t.Helper()
	dir := t.TempDir()
	vm := &bootedVM{gone: make(chan struct{})}
	var tap string
	vm.addr, tap = n.NewTap(t)
	var err error
	if vm.client, err = sshkey.Generate("test"); err != nil {
		t.Fatal(err)
	}
	if vm.host, err = sshkey.Generate("host"); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(dir, "work.ext4")
	if err := guestboot.MakeWorkDisk(img.WorkSeed, work, "256M", vm.client, vm.host); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root.ext4")
	if out, err := exec.Command("cp", "--sparse=always", img.Rootfs, root).CombinedOutput(); err != nil {
		t.Fatalf("copy the root disk: %v: %s", err, out)
	}
	cfg := guestapi.Config{Address: netip.PrefixFrom(vm.addr, n.Prefix.Bits()), Gateway: n.Prefix.Addr(), Hostname: name}
	guestArgs, err := cfg.Cmdline()
	if err != nil {
		t.Fatal(err)
	}
	vm.spec = vmm.Spec{
		VMID: name, Name: name, Dir: dir,
		KernelPath: img.Kernel, InitrdPath: img.Initrd,
		Cmdline: "console=ttyS0 reboot=k panic=1 root=/dev/vda rw " + guestArgs,
		VCPUs:   1, MemoryMiB: 512,
		RootDisk: root, WorkDisk: work,
		Tap: tap, MAC: guestboot.MAC(vm.addr),
		ConsoleLog: filepath.Join(dir, "console.log"),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	vm.started = time.Now()
	vm.h, err = d.Start(ctx, vm.spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: QMP ready %s after Start was called (pid %d)", name, time.Since(vm.started).Round(time.Millisecond), vm.h.PID)
	if qlog, err := os.ReadFile(filepath.Join(dir, LogFile)); err == nil {
		t.Logf("%s: %s", name, strings.SplitN(string(qlog), "\n", 2)[0])
	}
	go func() {
		vmm.Wait(context.Background(), vm.h)
		close(vm.gone)
	}()
	t.Cleanup(func() {
		vmm.KillProcess(vm.h)
		<-vm.gone
		if t.Failed() {
			qlog, _ := os.ReadFile(filepath.Join(dir, LogFile))
			t.Logf("qemu.log:\n%s\nconsole (end):\n%s", qlog, consoleTail(vm.spec.ConsoleLog, 40))
		}
	})
	return vm
}

func (vm *bootedVM) waitSSH(t *testing.T, n *guestboot.Network) *ssh.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := guestboot.WaitSSH(ctx, n.NS, vm.addr, vm.client.Signer, vm.host.Public(), vm.gone)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: SSH login %s after Start was called", vm.spec.Name, time.Since(vm.started).Round(100*time.Millisecond))
	t.Cleanup(func() { c.Close() })
	return c
}

func consoleTail(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(string(data), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestBoot boots the real test image under QEMU in a private network
// namespace: SSH works, a fresh Driver (as after a daemon restart)
// describes the VM and stops it through the ACPI power button; a second
// VM is killed. The boots run one after the other: under TCG on two
// cores, two at once would slow each down.
func TestBoot(t *testing.T) {
	netns.Require(t)
	guestboot.Require(t)
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("needs /dev/net/tun for the guest's tap")
	}
	img := testimage.Get(t)
	n := guestboot.NewNetwork(t)
	d := &Driver{Wrap: func(argv []string) []string {
		return append([]string{"ip", "netns", "exec", n.NS.Name}, argv...)
	}}
	accel, err := d.ResolveAccel()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("accelerator: %s", accel.Reason)

	t.Run("stop", func(t *testing.T) {
		vm := bootVM(t, d, n, img, "stopme")
		c := vm.waitSSH(t, n)
		out, err := guestboot.Run(c, "cat /proc/cmdline; findmnt -no SOURCE /; findmnt -no SOURCE /root; hostname; systemctl is-active systemd-logind")
		if err != nil {
			t.Fatalf("command over SSH: %v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 5 {
			t.Fatalf("unexpected output:\n%s", out)
		}
		if accel.Accel == AccelTCG && !strings.Contains(lines[0], " tsc=reliable") {
			t.Errorf("kernel command line lacks the TCG clock parameters: %s", lines[0])
		}
		if lines[1] != guestapi.DefaultRootDevice || lines[2] != guestapi.DefaultWorkDevice {
			t.Errorf("root on %s and work disk on %s, want %s and %s", lines[1], lines[2], guestapi.DefaultRootDevice, guestapi.DefaultWorkDevice)
		}
		if lines[3] != "stopme" {
			t.Errorf("hostname %q", lines[3])
		}
		if lines[4] != "active" {
			t.Errorf("systemd-logind is %q: nothing in the guest will act on the power button", lines[4])
		}

		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		fresh := &Driver{} // given only the handle, as after a daemon restart
		desc, err := fresh.Describe(ctx, vm.h)
		if err != nil || desc.State != vmm.StateRunning {
			t.Fatalf("Describe = %+v, %v", desc, err)
		}
		stopStart := time.Now()
		if err := fresh.Stop(ctx, vm.h); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		t.Logf("stopme: Stop (system_powerdown until QEMU exited) took %s", time.Since(stopStart).Round(10*time.Millisecond))
		if vmm.Alive(vm.h) {
			t.Fatal("QEMU alive after Stop")
		}
		if _, err := fresh.Describe(ctx, vm.h); !errors.Is(err, vmm.ErrExited) {
			t.Errorf("Describe after Stop: %v", err)
		}
		if err := fresh.Stop(ctx, vm.h); !errors.Is(err, vmm.ErrExited) {
			t.Errorf("second Stop: %v", err)
		}
		console, _ := os.ReadFile(vm.spec.ConsoleLog)
		for _, want := range []string{"Linux version", "ACPI: button: Power Button", "reboot: Power down"} {
			if !strings.Contains(string(console), want) {
				t.Errorf("console log lacks %q", want)
			}
		}
	})

	t.Run("kill", func(t *testing.T) {
		vm := bootVM(t, d, n, img, "killme")
		c := vm.waitSSH(t, n)
		if out, err := guestboot.Run(c, "true"); err != nil {
			t.Fatalf("command over SSH: %v\n%s", err, out)
		}
		fresh := &Driver{}
		if err := fresh.Kill(vm.h); err != nil {
			t.Fatal(err)
		}
		if vmm.Alive(vm.h) {
			t.Fatal("QEMU alive after Kill")
		}
		select {
		case <-vm.gone:
		case <-time.After(5 * time.Second):
			t.Fatal("QEMU's exit not seen after Kill")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if desc, err := fresh.Describe(ctx, vm.h); !errors.Is(err, vmm.ErrExited) || desc.State != vmm.StateExited {
			t.Errorf("Describe after Kill = %+v, %v", desc, err)
		}
		if console, _ := os.ReadFile(vm.spec.ConsoleLog); !strings.Contains(string(console), "Linux version") {
			t.Error("console log lacks the guest's boot output")
		}
	})
}
