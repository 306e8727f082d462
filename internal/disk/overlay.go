package disk

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// OverlayStrategy is how a VM's system overlay is made from its image's
// root file system. It is chosen per host and recorded on the VM, so a
// VM is torn down the way it was built even if the host changes.
type OverlayStrategy string

const (
	// OverlayDMSnapshot is a device-mapper snapshot over loop devices.
	// It needs root, so banger-helper builds it; CloneFile refuses it.
	OverlayDMSnapshot OverlayStrategy = "dm-snapshot"
	// OverlayReflink makes the overlay a file that shares the image's
	// blocks until the guest writes them (FICLONE; XFS, btrfs). It takes
	// milliseconds and no space up front.
	OverlayReflink OverlayStrategy = "reflink"
	// OverlayCopy is a sparse copy of the image: works on any file
	// system, costs the image's allocated size in time and space.
	OverlayCopy OverlayStrategy = "copy"
)

// Valid reports whether s is one of the known strategies.
func (s OverlayStrategy) Valid() bool {
	switch s {
	case OverlayDMSnapshot, OverlayReflink, OverlayCopy:
		return true
	}
	return false
}

// ProbeReflink reports whether files in dir can be cloned with FICLONE,
// by cloning a small file into another and removing both.
func ProbeReflink(dir string) bool {
	src, err := os.CreateTemp(dir, ".reflink-probe-*")
	if err != nil {
		return false
	}
	defer os.Remove(src.Name())
	defer src.Close()
	if _, err := src.Write(make([]byte, 4096)); err != nil {
		return false
	}
	dst, err := os.CreateTemp(dir, ".reflink-probe-*")
	if err != nil {
		return false
	}
	defer os.Remove(dst.Name())
	defer dst.Close()
	return unix.IoctlFileClone(int(dst.Fd()), int(src.Fd())) == nil
}

// CloneFile makes dst a copy of src with strategy s: OverlayReflink
// clones it (and fails where the file system cannot: there is no silent
// fallback to a copy, since the strategy is recorded and reported),
// OverlayCopy copies it sparsely, keeping holes holes. The copy is made
// in a temporary file next to dst, synced and renamed over dst, so dst
// is either absent (or as it was) or complete: a failure or a
// cancellation leaves nothing behind. dst gets mode 0600: a VM's disk is
// its owner's alone.
func CloneFile(ctx context.Context, src, dst string, s OverlayStrategy) error {
	persist, err := CloneFileDeferSync(ctx, src, dst, s)
	if err != nil {
		return err
	}
	return persist()
}

// CloneFileDeferSync is CloneFile that leaves making the copy durable to
// the returned persist function, which the caller may run later (in the
// background, once the VM boots): flushing a freshly written copy of a
// root file system takes longer than writing it, and nothing needs it on
// the platter before the guest starts. Until persist returns, a host
// crash may leave dst incomplete; the rename still means a failure or a
// cancellation before it leaves nothing behind.
func CloneFileDeferSync(ctx context.Context, src, dst string, s OverlayStrategy) (persist func() error, err error) {
	if s != OverlayReflink && s != OverlayCopy {
		return nil, fmt.Errorf("clone %s to %s: strategy %q is not a file clone (want %q or %q)", src, dst, s, OverlayReflink, OverlayCopy)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("clone %s: %w", src, err)
	}
	in, err := os.Open(src)
	if err != nil {
		return nil, fmt.Errorf("clone: %w", err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return nil, fmt.Errorf("clone: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("clone %s: not a regular file", src)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("clone %s: %w", src, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	switch s {
	case OverlayReflink:
		if err := unix.IoctlFileClone(int(tmp.Fd()), int(in.Fd())); err != nil {
			return nil, fmt.Errorf("reflink %s to %s (the file system must support FICLONE, as XFS and btrfs do): %w", src, dst, err)
		}
	case OverlayCopy:
		if err := copySparse(ctx, in, tmp, fi.Size()); err != nil {
			return nil, fmt.Errorf("copy %s to %s: %w", src, dst, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("clone %s: %w", src, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("clone %s: %w", src, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return nil, fmt.Errorf("clone %s: %w", src, err)
	}
	return func() error {
		f, err := os.Open(dst)
		if err != nil {
			return fmt.Errorf("sync %s: %w", dst, err)
		}
		defer f.Close()
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", dst, err)
		}
		return syncDir(filepath.Dir(dst))
	}, nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// CreateSparse makes path a new file of size bytes, all of it a hole
// (mode 0600): a dm-snapshot's copy-on-write store, which device-mapper
// reads as a fresh snapshot while its header is zero. An existing file
// is refused, never truncated.
func CreateSparse(path string, size int64) error {
	if size <= 0 || size%512 != 0 {
		return fmt.Errorf("create %s: size %d is not a positive whole number of 512-byte sectors", path, size)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("create %s: %w", path, err)
	}
	return f.Close()
}

// ChooseOverlayStrategy is how a VM's system overlay is made on this
// host, best first: a dm-snapshot when banger-helper can build one
// (helperDM), else a reflink when the VMs directory supports FICLONE,
// else a sparse copy.
func ChooseOverlayStrategy(helperDM, reflink bool) OverlayStrategy {
	switch {
	case helperDM:
		return OverlayDMSnapshot
	case reflink:
		return OverlayReflink
	}
	return OverlayCopy
}
