package guest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// isMountPoint reports whether dir is a mount point according to
// mountinfo, the contents of /proc/self/mountinfo. Its fifth field is
// the mount point, with space, tab, newline and backslash octal-escaped.
func isMountPoint(mountinfo []byte, dir string) bool {
	dir = filepath.Clean(dir)
	for _, line := range strings.Split(string(mountinfo), "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 5 && unescapeMountinfo(fields[4]) == dir {
			return true
		}
	}
	return false
}

// unescapeMountinfo undoes the kernel's \ooo escaping in mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountWorkDisk mounts the ext4 work disk device on dir unless something
// is mounted there already (an fstab entry, or a restart of the unit).
// It reports whether it mounted.
func mountWorkDisk(device, dir string) (bool, error) {
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, fmt.Errorf("read mount table: %w", err)
	}
	if isMountPoint(mountinfo, dir) {
		return false, nil
	}
	if _, err := waitForDevice(device, deviceWait, isBlockDevice); err != nil {
		return false, fmt.Errorf("work disk: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	if err := unix.Mount(device, dir, "ext4", unix.MS_NOSUID|unix.MS_NODEV, ext4NoLazyInit); err != nil {
		return false, fmt.Errorf("mount work disk %s on %s: %w", device, dir, err)
	}
	return true, nil
}

// fixWorkOwnership makes the work disk mounted on home root's own. The
// daemon builds the disk as an unprivileged user with mkfs.ext4 -d, so
// its files carry that user's uid; in the guest they belong to root, and
// both sshd (StrictModes, for the authorized key) and git (safe.directory,
// for the user's repository) refuse files of another owner. It reports
// how many files it changed; a second run changes none and costs a walk.
func fixWorkOwnership(home string) (int, error) {
	chowned, err := chownToRoot(home)
	if err != nil {
		return chowned, err
	}
	chmodded, err := fixSSHModes(home)
	return chowned + chmodded, err
}

// chownToRoot chowns every file under dir that is not root:root to
// root:root, without following symlinks.
func chownToRoot(dir string) (int, error) {
	changed := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if st.Uid == 0 && st.Gid == 0 {
			return nil
		}
		if err := unix.Lchown(p, 0, 0); err != nil {
			return fmt.Errorf("chown %s: %w", p, err)
		}
		changed++
		return nil
	})
	return changed, err
}

// fixSSHModes gives home and home/.ssh mode 0700 and the authorized keys
// 0600, the modes sshd's StrictModes accepts. Missing ones are skipped.
func fixSSHModes(home string) (int, error) {
	changed := 0
	for _, f := range []struct {
		path string
		mode os.FileMode
	}{
		{home, 0o700},
		{filepath.Join(home, ".ssh"), 0o700},
		{filepath.Join(home, ".ssh", "authorized_keys"), 0o600},
	} {
		fi, err := os.Lstat(f.path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return changed, err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			continue // chmod would follow it out of the work disk
		}
		if fi.Mode().Perm() != f.mode {
			if err := os.Chmod(f.path, f.mode); err != nil {
				return changed, fmt.Errorf("chmod %s: %w", f.path, err)
			}
			changed++
		}
	}
	return changed, nil
}
