package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"banger/internal/vmm"
)

// readyTimeout bounds how long Start waits for QMP when ctx has no
// earlier deadline. QEMU answers within tens of milliseconds.
const readyTimeout = 30 * time.Second

// Start launches QEMU for spec and returns once its monitor says the
// guest runs. QEMU gets a session of its own, /dev/null as stdin and
// spec.Dir/qemu.log (appended) as stdout and stderr, so it depends on
// nothing of the caller's and outlives it; while the caller lives, a
// goroutine reaps it when it exits. If it exits or does not answer in
// time, Start kills it and returns a *StartError carrying its log.
func (d *Driver) Start(ctx context.Context, spec vmm.Spec) (vmm.Handle, error) {
	if err := spec.Validate(); err != nil {
		return vmm.Handle{}, err
	}
	accel, err := d.ResolveAccel()
	if err != nil {
		return vmm.Handle{}, err
	}
	bin, err := exec.LookPath(d.binary())
	if err != nil {
		return vmm.Handle{}, fmt.Errorf("find qemu: %w", err)
	}
	m := machine{accel: accel.Accel, tscKHz: hostTSCkHz(realHost.Proc), vsock: hostHasVSock()}
	argv := append([]string{bin}, qemuArgs(spec, m)...)
	if d.Wrap != nil {
		argv = d.Wrap(argv)
	}

	sock := spec.ControlSocket
	if sock == "" {
		sock = filepath.Join(spec.Dir, QMPSocket)
	}
	monitor, err := listenUnix(sock)
	if err != nil {
		return vmm.Handle{}, fmt.Errorf("qmp socket: %w", err)
	}
	logPath := filepath.Join(spec.Dir, LogFile)
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		monitor.Close()
		os.Remove(sock)
		return vmm.Handle{}, fmt.Errorf("open qemu log: %w", err)
	}
	fmt.Fprintf(logFile, "%s banger: starting %s\n", time.Now().Format(time.RFC3339), strings.Join(argv, " "))
	logStart, _ := logFile.Seek(0, io.SeekEnd)

	proc, err := vmm.Spawn(DriverName, argv, spec.Dir, logFile, logFile, []*os.File{monitor}, sock) // monitor: qmpFD
	// QEMU holds its own copies now; the monitor socket must have no
	// listener but QEMU's, or a QEMU that dies would leave connections
	// hanging instead of refused.
	monitor.Close()
	logFile.Close()
	if err != nil {
		os.Remove(sock)
		return vmm.Handle{}, err
	}
	fail := func(cause error) (vmm.Handle, error) {
		proc.Abort()
		os.Remove(sock)
		return vmm.Handle{}, &vmm.StartError{Driver: DriverName, Err: cause, LogName: LogFile, Log: vmm.LogTail(logPath, logStart, 20, 4096)}
	}
	if err := waitReady(ctx, sock, proc.Exited); err != nil {
		if errors.Is(err, errExited) {
			err = fmt.Errorf("qemu exited before its monitor answered (%w)", proc.WaitErr())
		}
		return fail(err)
	}
	return proc.Handle, nil
}

var errExited = errors.New("qemu exited")

// waitReady connects to QEMU's monitor and returns once query-status
// says the guest runs. The socket was listening before QEMU started, so
// the connection is made at once and the greeting arrives when QEMU is
// up: nothing is polled. A QEMU that exits first ends the wait with
// errExited.
func waitReady(ctx context.Context, sock string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	ctx, cancelCause := context.WithCancelCause(ctx)
	defer cancelCause(nil)
	go func() {
		select {
		case <-exited:
			cancelCause(errExited)
		case <-ctx.Done():
		}
	}()
	err := func() error {
		q, err := DialQMP(ctx, sock)
		if err != nil {
			return err
		}
		defer q.Close()
		var st runStatus
		if err := q.Execute(ctx, "query-status", nil, &st); err != nil {
			return err
		}
		if !st.Running {
			return fmt.Errorf("qemu is up but the guest is not running (status %q)", st.Status)
		}
		return nil
	}()
	if err == nil {
		return nil
	}
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errExited):
		return errExited
	case cause != nil:
		return fmt.Errorf("qemu's monitor did not answer: %w", cause)
	case errors.Is(err, context.DeadlineExceeded):
		// The socket's deadline fired before ctx's timer.
		return fmt.Errorf("qemu's monitor did not answer: %w", err)
	}
	// A QEMU that exits resets the connection; the reaper may see the
	// exit a moment later than the socket does.
	select {
	case <-exited:
		return errExited
	case <-time.After(time.Second):
		return err
	}
}

// listenUnix binds and listens on a unix socket at path, replacing a
// stale one, and returns it as a file for QEMU to inherit.
func listenUnix(path string) (*os.File, error) {
	if len(path) >= len(unix.RawSockaddrUnix{}.Path) {
		return nil, fmt.Errorf("socket path %s is longer than a unix socket address allows (%d bytes)", path, len(unix.RawSockaddrUnix{}.Path)-1)
	}
	if err := vmm.RemoveStaleSocket(path); err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind %s: %w", path, err)
	}
	if err := unix.Listen(fd, 8); err != nil {
		unix.Close(fd)
		os.Remove(path)
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

func hostHasVSock() bool {
	_, err := os.Stat("/dev/vhost-vsock")
	return err == nil
}
