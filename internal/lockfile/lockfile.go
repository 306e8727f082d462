// Package lockfile provides the advisory file locks banger uses to keep
// one daemon per user and to serialise daemon start-up between CLIs. The
// kernel drops a flock when its holder dies, so a lock can never go stale
// the way a pid file or socket file can.
package lockfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// ErrHeld is returned by TryLock when another process holds the lock.
var ErrHeld = errors.New("lock is held by another process")

// Lock is a held exclusive lock on a file.
type Lock struct {
	f *os.File
}

// TryLock takes an exclusive lock on path without waiting, creating the
// file (0600) when needed. It returns ErrHeld when another process holds it.
func TryLock(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, ErrHeld
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Acquire waits for an exclusive lock on path until ctx is done.
func Acquire(ctx context.Context, path string) (*Lock, error) {
	delay := 5 * time.Millisecond
	for {
		l, err := TryLock(path)
		if !errors.Is(err, ErrHeld) {
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for lock %s: %w", path, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, 100*time.Millisecond)
	}
}

// WritePID records the holder's pid in the lock file, for messages such
// as "already running (pid N)".
func (l *Lock) WritePID(pid int) error {
	if err := l.f.Truncate(0); err != nil {
		return err
	}
	_, err := l.f.WriteAt([]byte(strconv.Itoa(pid)+"\n"), 0)
	return err
}

// Release clears the recorded pid and drops the lock. The file stays:
// unlinking it would let a waiter lock a file that a newcomer no longer
// sees.
func (l *Lock) Release() error {
	_ = l.f.Truncate(0)
	return l.f.Close()
}

// ReadPID returns the pid recorded in a lock file, or 0 when there is none.
func ReadPID(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(data)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
