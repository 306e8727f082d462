package vmm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ProcStartTime reads a process's start time (clock ticks since boot,
// field 22 of /proc/PID/stat).
func ProcStartTime(pid int) (uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStartTime(data)
}

// parseStartTime finds field 22 in a /proc/PID/stat line. The command
// name (field 2) is in parentheses and may itself contain spaces and
// parentheses, so fields are counted from the last ')'.
func parseStartTime(stat []byte) (uint64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	fields := bytes.Fields(stat[i+1:])
	// fields[0] is field 3 (state); field 22 is fields[19].
	if len(fields) < 20 {
		return 0, errors.New("short /proc stat")
	}
	return strconv.ParseUint(string(fields[19]), 10, 64)
}

// procState is field 3 of /proc/PID/stat ('R', 'S', 'Z', ...).
func procState(pid int) (byte, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 >= len(data) {
		return 0, errors.New("malformed /proc stat")
	}
	return data[i+2], nil
}

// Alive reports whether the process h names still runs: same pid, same
// start time, and not a zombie.
func Alive(h Handle) bool {
	if h.PID <= 0 {
		return false
	}
	st, err := ProcStartTime(h.PID)
	if err != nil || st != h.StartTime {
		return false
	}
	state, err := procState(h.PID)
	return err == nil && state != 'Z'
}

// HandleFor describes a process that was just started.
func HandleFor(driver string, pid int, control string) (Handle, error) {
	st, err := ProcStartTime(pid)
	if err != nil {
		return Handle{}, fmt.Errorf("read start time of pid %d: %w", pid, err)
	}
	return Handle{Driver: driver, PID: pid, StartTime: st, ControlSocket: control}, nil
}

// Wait blocks until the process h names has exited (or ctx ends). It
// works for processes that are not the caller's children — a VMM
// adopted after a daemon restart — through a pidfd, which becomes
// readable when the process exits.
func Wait(ctx context.Context, h Handle) error {
	if !Alive(h) {
		return nil
	}
	fd, err := unix.PidfdOpen(h.PID, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil
		}
		return pollWait(ctx, h)
	}
	defer unix.Close(fd)
	// The pid may have been reused between Alive and PidfdOpen.
	if !Alive(h) {
		return nil
	}
	done := make(chan error, 1)
	go func() {
		for {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, err := unix.Poll(fds, 500)
			if err != nil && !errors.Is(err, unix.EINTR) {
				done <- err
				return
			}
			if n > 0 || !Alive(h) {
				done <- nil
				return
			}
			if ctx.Err() != nil {
				done <- ctx.Err()
				return
			}
		}
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pollWait is Wait without pidfds (kernels before 5.3).
func pollWait(ctx context.Context, h Handle) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for Alive(h) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// KillProcess sends SIGKILL to h's process if it is still the same one.
func KillProcess(h Handle) error {
	if !Alive(h) {
		return nil
	}
	if err := syscall.Kill(h.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill pid %d: %w", h.PID, err)
	}
	return nil
}

// killWait bounds how long KillAndWait waits for a killed VMM to be gone.
const killWait = 10 * time.Second

// KillAndWait sends h's process SIGKILL and waits (briefly) until it is
// gone, so the caller can release its tap and disks: every driver's Kill.
func KillAndWait(h Handle) error {
	if err := KillProcess(h); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), killWait)
	defer cancel()
	if err := Wait(ctx, h); err != nil {
		return fmt.Errorf("%s (pid %d) killed but still there: %w", h.Driver, h.PID, err)
	}
	return nil
}
