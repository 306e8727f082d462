package fcdouble

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"banger/internal/kernel"
	"banger/internal/vmm/qemu"
)

// machine is the guest, run by QEMU as the double's child: -M microvm
// (virtio-mmio devices found through ACPI, as Firecracker's since 1.8),
// an i8042 keyboard controller for Ctrl+Alt+Del, no reboot (a guest reset
// ends QEMU, as it ends Firecracker), the serial console on the double's
// standard output, and QMP on a socket pair for the few things the API
// asks of a running VM.
type machine struct {
	cmd      *exec.Cmd
	qmp      *qemu.QMP
	done     chan struct{}
	exitDesc string
	paused   bool
	drives   map[string]string // QEMU block node id → drive id
}

// qmpTimeout bounds each QMP exchange.
const qmpTimeout = 5 * time.Second

func startMachine(qemuBin string, vm vmConfig, log *fileLogger) (*machine, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	ours := os.NewFile(uintptr(fds[0]), "qmp")
	theirs := os.NewFile(uintptr(fds[1]), "qmp-qemu")
	defer theirs.Close()
	defer ours.Close()

	args, drives := qemuArgs(vm)
	cmd := exec.Command(qemuBin, args...)
	cmd.Stdin = nil
	cmd.Stdout = os.Stdout // the guest's console, where Firecracker puts it
	stderr := &tailBuffer{max: 4096}
	cmd.Stderr = stderr
	cmd.ExtraFiles = []*os.File{theirs}
	// QEMU dies with the double, however the double ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	log.log(levelDebug, "qemu "+strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", qemuBin, err)
	}
	m := &machine{cmd: cmd, done: make(chan struct{}), drives: drives}
	go func() {
		err := cmd.Wait()
		m.exitDesc = "exited 0"
		if err != nil {
			m.exitDesc = err.Error()
		}
		if s := strings.TrimSpace(stderr.String()); s != "" {
			log.log(levelWarn, "qemu: "+s)
		}
		close(m.done)
	}()
	conn, err := net.FileConn(ours)
	if err != nil {
		m.kill()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, err := qemu.NewQMP(ctx, conn)
	if err != nil {
		conn.Close()
		m.kill()
		<-m.done
		return nil, faultf("the guest did not start: %s", strings.TrimSpace(stderr.String()))
	}
	m.qmp = q
	var status struct {
		Status string `json:"status"`
	}
	if err := q.Execute(ctx, "query-status", nil, &status); err != nil || status.Status != "running" {
		m.kill()
		<-m.done
		return nil, faultf("the guest did not start (%v %s): %s", err, status.Status, strings.TrimSpace(stderr.String()))
	}
	return m, nil
}

// qemuArgs is QEMU's command line for the configured VM, and which block
// node is which drive. The root drive comes first (/dev/vda), the others
// in the order they were put, as Firecracker attaches them.
func qemuArgs(vm vmConfig) ([]string, map[string]string) {
	a := []string{"-M", "microvm,acpi=on"}
	cmdline := vm.Boot.BootArgs
	if qemu.DetectAccel().Accel == qemu.AccelKVM {
		a = append(a, "-accel", "kvm", "-cpu", "host")
	} else {
		// Under emulation the guest is told its clock rate, or it can
		// hang calibrating (the qemu driver does the same).
		a = append(a, "-accel", "tcg", "-cpu", "max")
		if khz := qemu.HostTSCkHz(); khz > 0 && !strings.Contains(cmdline, "tsc_early_khz=") {
			cmdline += " tsc_early_khz=" + strconv.Itoa(khz)
		}
		if !strings.Contains(cmdline, "tsc=") {
			cmdline += " tsc=reliable"
		}
	}
	a = append(a,
		"-m", strconv.Itoa(vm.Machine.MemSizeMib)+"M",
		"-smp", strconv.Itoa(vm.Machine.VCPUCount),
		"-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
		"-device", "i8042",
		"-kernel", vm.Boot.KernelImagePath,
		"-append", strings.TrimSpace(cmdline),
	)
	if vm.Boot.InitrdPath != "" {
		a = append(a, "-initrd", vm.Boot.InitrdPath)
	}
	drives := map[string]string{}
	ordered := make([]drive, 0, len(vm.Drives))
	for _, dr := range vm.Drives {
		if dr.IsRootDevice {
			ordered = append([]drive{dr}, ordered...)
		} else {
			ordered = append(ordered, dr)
		}
	}
	for i, dr := range ordered {
		id := "drive" + strconv.Itoa(i)
		drives[id] = dr.DriveID
		o := "id=" + id + ",file=" + opt(dr.PathOnHost) + ",format=raw,if=none"
		if dr.IsReadOnly {
			o += ",readonly=on"
		}
		a = append(a, "-drive", o, "-device", "virtio-blk-device,drive="+id)
	}
	for i, n := range vm.Ifaces {
		id := "net" + strconv.Itoa(i)
		dev := "virtio-net-device,netdev=" + id
		if n.GuestMAC != "" {
			dev += ",mac=" + n.GuestMAC
		}
		a = append(a, "-netdev", "tap,id="+id+",ifname="+opt(n.HostDevName)+",script=no,downscript=no", "-device", dev)
	}
	if vm.Vsock != nil && hostHasVhostVsock() {
		a = append(a, "-device", "vhost-vsock-device,guest-cid="+strconv.FormatUint(uint64(vm.Vsock.GuestCID), 10))
	}
	a = append(a,
		"-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console",
		"-chardev", "socket,id=qmp,fd=3,server=off", "-mon", "chardev=qmp,mode=control",
	)
	return a, drives
}

func opt(v string) string { return strings.ReplaceAll(v, ",", ",,") }

func hostHasVhostVsock() bool {
	f, err := os.OpenFile("/dev/vhost-vsock", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// wait blocks until QEMU has exited and returns the double's exit code:
// 0 when the guest powered off or reset, 1 when QEMU failed or was
// killed.
func (m *machine) wait() int {
	<-m.done
	if m.cmd.ProcessState != nil && m.cmd.ProcessState.Success() {
		return 0
	}
	return 1
}

func (m *machine) kill() {
	m.cmd.Process.Kill()
}

func (m *machine) execute(cmd string, args, result any) error {
	select {
	case <-m.done:
		return faultf("the guest has ended")
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), qmpTimeout)
	defer cancel()
	return m.qmp.Execute(ctx, cmd, args, result)
}

// ctrlAltDel presses Ctrl+Alt+Del on the emulated i8042 keyboard.
func (m *machine) ctrlAltDel() error {
	keys := []map[string]string{{"type": "qcode", "data": "ctrl"}, {"type": "qcode", "data": "alt"}, {"type": "qcode", "data": "delete"}}
	return m.execute("send-key", map[string]any{"keys": keys}, nil)
}

func (m *machine) setPaused(paused bool) error {
	cmd := "cont"
	if paused {
		cmd = "stop"
	}
	if err := m.execute(cmd, nil, nil); err != nil {
		return err
	}
	m.paused = paused
	return nil
}

// blockStats is each drive's cumulative I/O, in Firecracker's metric
// names.
func (m *machine) blockStats() map[string]map[string]uint64 {
	var res []struct {
		Device string `json:"device"`
		QDev   string `json:"qdev"`
		Node   string `json:"node-name"`
		Stats  struct {
			RdBytes      uint64 `json:"rd_bytes"`
			WrBytes      uint64 `json:"wr_bytes"`
			RdOperations uint64 `json:"rd_operations"`
			WrOperations uint64 `json:"wr_operations"`
			FlushOps     uint64 `json:"flush_operations"`
		} `json:"stats"`
	}
	out := map[string]map[string]uint64{}
	if err := m.execute("query-blockstats", nil, &res); err != nil {
		return out
	}
	for _, r := range res {
		id, ok := m.drives[r.Device]
		if !ok {
			continue
		}
		out[id] = map[string]uint64{
			"read_bytes": r.Stats.RdBytes, "write_bytes": r.Stats.WrBytes,
			"read_count": r.Stats.RdOperations, "write_count": r.Stats.WrOperations,
			"flush_count": r.Stats.FlushOps,
		}
	}
	return out
}

// tapStats is a tap's traffic seen from the guest: what the tap sent
// the guest received.
func tapStats(tap string) map[string]uint64 {
	link, err := netlink.LinkByName(tap)
	if err != nil || link.Attrs().Statistics == nil {
		return map[string]uint64{}
	}
	s := link.Attrs().Statistics
	return map[string]uint64{
		"rx_bytes_count": s.TxBytes, "rx_packets_count": s.TxPackets,
		"tx_bytes_count": s.RxBytes, "tx_packets_count": s.RxPackets,
	}
}

// probeTap opens the tap as Firecracker does (IFF_TAP|IFF_NO_PI|
// IFF_VNET_HDR on /dev/net/tun) and lets it go again: the tap must exist
// and its owner must be this user.
func probeTap(name string) error {
	if len(name) >= unix.IFNAMSIZ || name == "" {
		return faultf("invalid tap name %q", name)
	}
	// Asked over netlink, in this process's network namespace (/sys may
	// show another). TUNSETIFF on a missing name would make a tap.
	if _, err := net.InterfaceByName(name); err != nil {
		return faultf("no device %s", name)
	}
	f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	var req [unix.IFNAMSIZ + 64]byte
	copy(req[:], name)
	*(*uint16)(unsafe.Pointer(&req[unix.IFNAMSIZ])) = unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.TUNSETIFF, uintptr(unsafe.Pointer(&req[0]))); errno != 0 {
		return faultf("TUNSETIFF %s: %s (os error %d)", name, errno.Error(), int(errno))
	}
	return nil
}

// checkElf refuses what Firecracker cannot load on x86_64: anything but
// an ELF vmlinux.
func checkELF(path string) error {
	info, err := kernel.Inspect(path)
	if err != nil {
		return faultf("Kernel Loader: failed to load ELF kernel image: %v", err)
	}
	if info.Format != kernel.FormatELF {
		return faultf("Kernel Loader: failed to load ELF kernel image: %s is a %s, not an ELF vmlinux", path, info.Format)
	}
	return nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
