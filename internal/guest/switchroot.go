package guest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Filesystem magics of an initramfs root (statfs f_type).
const (
	ramfsMagic = 0x858458f6
	tmpfsMagic = 0x01021994
)

// switchRoot makes newRoot the root filesystem, as busybox switch_root
// does: free the initramfs (its files live in RAM until deleted), move
// the new root's mount onto /, and chroot into it. The caller then execs
// the real init, which inherits the new root and the console.
func switchRoot(log *consoleLog, newRoot string) error {
	if err := unix.Chdir(newRoot); err != nil {
		return fmt.Errorf("chdir %s: %w", newRoot, err)
	}
	var oldSt, newSt unix.Stat_t
	if err := unix.Stat("/", &oldSt); err != nil {
		return fmt.Errorf("stat /: %w", err)
	}
	if err := unix.Stat(".", &newSt); err != nil {
		return fmt.Errorf("stat %s: %w", newRoot, err)
	}
	if oldSt.Dev == newSt.Dev {
		return fmt.Errorf("%s is not a mount point", newRoot)
	}
	if isInitramfs("/") {
		if err := deleteTree("/", oldSt.Dev); err != nil {
			// Only memory is lost: boot on.
			log.printf("initramfs not fully freed: %v", err)
		}
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move %s to /: %w", newRoot, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot %s: %w", newRoot, err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir / in the new root: %w", err)
	}
	return nil
}

// isInitramfs reports whether dir is on a ramfs or tmpfs, which is what
// makes deleting everything under it safe: it is never a disk.
func isInitramfs(dir string) bool {
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return false
	}
	return uint32(fs.Type) == ramfsMagic || uint32(fs.Type) == tmpfsMagic
}

// deleteTree removes everything under dir that lives on device dev,
// leaving dir itself. It does not descend into other mounts (the new
// root, and /dev, /proc, /sys if they were not moved), so only the
// initramfs's own files go. It keeps going past errors and returns the
// first.
func deleteTree(dir string, dev uint64) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			keep(err)
			continue
		}
		if st.Dev != dev {
			continue // a mount point
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			keep(deleteTree(p, dev))
			err = unix.Rmdir(p)
		} else {
			err = unix.Unlink(p)
		}
		// ENOTEMPTY: a mount point lies further down, and stays.
		if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTEMPTY) {
			keep(fmt.Errorf("remove %s: %w", p, err))
		}
	}
	return first
}
