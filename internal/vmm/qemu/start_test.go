package qemu

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"banger/internal/vmm"
)

// fakeSpec is a spec whose files the fake QEMUs never open.
func fakeSpec(t *testing.T) vmm.Spec {
	dir := t.TempDir()
	return vmm.Spec{
		VMID: "vm1", Name: "fake", Dir: dir,
		KernelPath: filepath.Join(dir, "vmlinux"), RootDisk: filepath.Join(dir, "root.ext4"),
		Cmdline: "console=ttyS0", VCPUs: 1, MemoryMiB: 128,
		ConsoleLog: filepath.Join(dir, "console.log"),
	}
}

// script writes an executable shell script and returns its path.
func script(t *testing.T, body string) string {
	path := filepath.Join(t.TempDir(), "qemu-system-x86_64")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// requireGone fails unless the pid written to pidFile names no process,
// not even a zombie: Start must kill and reap what it started.
func requireGone(t *testing.T, pidFile string) {
	t.Helper()
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the fake qemu did not run: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("pid %d is still there after Start failed (kill 0: %v)", pid, err)
	}
}

func TestStartQEMUExitsAtOnce(t *testing.T) {
	spec := fakeSpec(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	bin := script(t, `echo $$ > `+pidFile+`
echo "qemu-system-x86_64: -netdev tap,id=net0,ifname=tap0: could not open /dev/net/tun: Operation not permitted" >&2
exit 1
`)
	start := time.Now()
	_, err := (&Driver{Binary: bin, Accel: AccelTCG}).Start(testCtx(t, 30*time.Second), spec)
	if err == nil {
		t.Fatal("Start succeeded with a QEMU that exits")
	}
	t.Logf("after %s: %v", time.Since(start).Round(time.Millisecond), err)
	var se *vmm.StartError
	if !errors.As(err, &se) {
		t.Fatalf("err is %T, want *vmm.StartError", err)
	}
	if !strings.Contains(se.Log, "could not open /dev/net/tun: Operation not permitted") ||
		!strings.Contains(err.Error(), "could not open /dev/net/tun") {
		t.Errorf("the error does not show QEMU's output:\n%v", err)
	}
	if !strings.Contains(err.Error(), "exit status 1") {
		t.Errorf("the error does not say QEMU exited:\n%v", err)
	}
	if strings.Contains(se.Log, "banger: starting") {
		t.Errorf("the log tail includes the driver's own header:\n%s", se.Log)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("noticing the exit took %s", time.Since(start))
	}
	requireGone(t, pidFile)
	if _, err := os.Lstat(filepath.Join(spec.Dir, QMPSocket)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("QMP socket left behind: %v", err)
	}
	// The full log keeps what was run.
	data, _ := os.ReadFile(filepath.Join(spec.Dir, LogFile))
	if !strings.Contains(string(data), "banger: starting "+bin+" -M microvm,acpi=on") {
		t.Errorf("qemu.log does not record the command line:\n%s", data)
	}
}

func TestStartQEMUNeverAnswers(t *testing.T) {
	spec := fakeSpec(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	// It keeps the monitor socket open but never speaks, and leaves a
	// child of its own behind.
	bin := script(t, `echo $$ > `+pidFile+`
echo "stuck" >&2
sleep 60 &
exec sleep 60
`)
	ctx := testCtx(t, 500*time.Millisecond)
	_, err := (&Driver{Binary: bin, Accel: AccelTCG}).Start(ctx, spec)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "stuck") {
		t.Fatalf("err = %v, want a deadline error showing the log", err)
	}
	requireGone(t, pidFile)
}

func TestStartMissingBinary(t *testing.T) {
	_, err := (&Driver{Binary: "/nonexistent/qemu"}).Start(testCtx(t, time.Second), fakeSpec(t))
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/qemu") {
		t.Fatalf("err = %v", err)
	}
}

func TestStartRejectsBadSpec(t *testing.T) {
	spec := fakeSpec(t)
	spec.Tap = "tap0" // and no MAC
	if _, err := (&Driver{Binary: os.Args[0]}).Start(testCtx(t, time.Second), spec); err == nil {
		t.Fatal("a tap without a MAC accepted")
	}
	spec = fakeSpec(t)
	spec.Dir = "/tmp/" + strings.Repeat("d", 120)
	if _, err := (&Driver{Binary: os.Args[0]}).Start(testCtx(t, time.Second), spec); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("a socket path too long for a unix address: %v", err)
	}
}

// TestLifecycle runs the driver against the fake QEMU in this test
// binary: start, describe (also from a fresh Driver, as after a daemon
// restart), pause, stop; then start and kill.
func TestLifecycle(t *testing.T) {
	t.Setenv(fakeQEMUEnv, "1")
	spec := fakeSpec(t)
	d := &Driver{Binary: os.Args[0], Accel: AccelTCG}
	ctx := testCtx(t, 30*time.Second)
	h, err := d.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vmm.KillProcess(h) })
	if h.Driver != "qemu" || h.PID <= 0 || h.StartTime == 0 || h.ControlSocket != filepath.Join(spec.Dir, QMPSocket) {
		t.Fatalf("handle %+v", h)
	}
	if pgid, _ := syscall.Getpgid(h.PID); pgid != h.PID {
		t.Errorf("qemu is in process group %d, not a session of its own", pgid)
	}

	// Nothing ties QEMU to the caller: stdin is /dev/null, its output
	// goes to qemu.log, and fd 3 is the monitor socket.
	for fd, want := range map[int]string{0: "/dev/null", 1: filepath.Join(spec.Dir, LogFile), 2: filepath.Join(spec.Dir, LogFile), 3: "socket:"} {
		got, err := os.Readlink("/proc/" + strconv.Itoa(h.PID) + "/fd/" + strconv.Itoa(fd))
		if err != nil || !strings.HasPrefix(got, want) {
			t.Errorf("qemu's fd %d is %q (%v), want %s", fd, got, err, want)
		}
	}

	fresh := &Driver{} // knows nothing but the handle
	desc, err := fresh.Describe(ctx, h)
	if err != nil || desc.State != vmm.StateRunning || desc.PID != h.PID || desc.Detail != "running" {
		t.Fatalf("Describe = %+v, %v", desc, err)
	}
	if err := withQMP(ctx, h, func(q *QMP) error { return q.Execute(ctx, "stop", nil, nil) }); err != nil {
		t.Fatal(err)
	}
	if desc, err := fresh.Describe(ctx, h); err != nil || desc.State != vmm.StatePaused {
		t.Fatalf("Describe after stop = %+v, %v", desc, err)
	}

	if err := (&Driver{}).Stop(ctx, h); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if vmm.Alive(h) {
		t.Fatal("alive after Stop")
	}
	if err := fresh.Stop(ctx, h); !errors.Is(err, vmm.ErrExited) {
		t.Errorf("Stop of a stopped VM = %v, want ErrExited", err)
	}
	if desc, err := fresh.Describe(ctx, h); !errors.Is(err, vmm.ErrExited) || desc.State != vmm.StateExited {
		t.Errorf("Describe of a stopped VM = %+v, %v", desc, err)
	}
	if err := fresh.Kill(h); err != nil {
		t.Errorf("Kill of a stopped VM: %v", err)
	}
	log, _ := os.ReadFile(filepath.Join(spec.Dir, LogFile))
	if !strings.Contains(string(log), "fake qemu: powered off") {
		t.Errorf("qemu.log:\n%s", log)
	}
	if console, _ := os.ReadFile(spec.ConsoleLog); string(console) != "fake guest booting\n" {
		t.Errorf("console = %q", console)
	}

	// A second start in the same directory reuses the socket path.
	h2, err := d.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vmm.KillProcess(h2) })
	if err := fresh.Kill(h2); err != nil {
		t.Fatal(err)
	}
	if vmm.Alive(h2) {
		t.Fatal("alive after Kill")
	}
	if _, err := fresh.Describe(ctx, h2); !errors.Is(err, vmm.ErrExited) {
		t.Errorf("Describe after Kill: %v", err)
	}
}

func TestHandleChecks(t *testing.T) {
	d := &Driver{}
	ctx := testCtx(t, time.Second)
	for _, h := range []vmm.Handle{
		{Driver: "firecracker", PID: 1, ControlSocket: "/x"},
		{Driver: "qemu", ControlSocket: "/x"},
		{Driver: "qemu", PID: 1},
	} {
		if err := d.Stop(ctx, h); err == nil || errors.Is(err, vmm.ErrExited) {
			t.Errorf("Stop(%+v) = %v", h, err)
		}
		if _, err := d.Describe(ctx, h); err == nil {
			t.Errorf("Describe(%+v) accepted", h)
		}
		if err := d.Kill(h); err == nil {
			t.Errorf("Kill(%+v) accepted", h)
		}
	}
	// A handle whose start time does not match (a reused pid) is gone.
	gone := vmm.Handle{Driver: "qemu", PID: os.Getpid(), StartTime: 1, ControlSocket: "/x"}
	if err := d.Stop(ctx, gone); !errors.Is(err, vmm.ErrExited) {
		t.Errorf("Stop of a reused pid = %v", err)
	}
	if err := d.Kill(gone); err != nil {
		t.Errorf("Kill of a reused pid = %v", err)
	}
}
