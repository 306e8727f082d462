package firecracker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

var errExited = errors.New("firecracker exited")

// socketWatch waits for a file to appear in a directory with inotify:
// no polling, woken by the kernel when the name is created.
type socketWatch struct {
	f    *os.File
	path string
}

// watchFor starts watching for path; call it before whatever creates it.
func watchFor(path string) (*socketWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, filepath.Dir(path), unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("watch %s: %w", filepath.Dir(path), err)
	}
	// Non-blocking: the runtime's poller wakes the reader, and read
	// deadlines work.
	return &socketWatch{f: os.NewFile(uintptr(fd), "inotify"), path: path}, nil
}

func (w *socketWatch) Close() error { return w.f.Close() }

// wait returns once path exists, errExited once exited is closed, or an
// error when timeout or ctx ends first.
func (w *socketWatch) wait(ctx context.Context, timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	w.f.SetReadDeadline(deadline)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-exited:
		case <-ctx.Done():
		case <-stop:
			return
		}
		w.f.SetReadDeadline(time.Now())
	}()
	name := filepath.Base(w.path)
	buf := make([]byte, 4096)
	for {
		if _, err := os.Lstat(w.path); err == nil {
			return nil
		}
		n, err := w.f.Read(buf)
		if err != nil {
			if _, serr := os.Lstat(w.path); serr == nil {
				return nil
			}
			select {
			case <-exited:
				return errExited
			default:
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%s did not appear within %s: %w", w.path, timeout, err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			nameBytes := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			if string(bytes.TrimRight(nameBytes, "\x00")) == name {
				return nil
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
	}
}
