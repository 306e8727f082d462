package imagebuild

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// removeAll deletes a build directory without ever reaching outside it:
// mounts a killed mmdebstrap left in the tree (proc, sys, devpts) are
// detached first, and rm --one-file-system does not descend into any
// that remain. In unshare mode it runs inside the user namespace, where
// files of subordinate ids are removable (mmdebstrap's mounts there die
// with its mount namespace).
func removeAll(ctx context.Context, mode Mode, dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if os.Geteuid() == 0 {
		if err := unmountUnder(dir); err != nil {
			return err
		}
	}
	argv := mode.inNamespace("rm", "-rf", "--one-file-system", dir)
	if out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("remove %s: %v: %s", dir, err, out)
	}
	return nil
}

// unmountUnder detaches every mount below dir, deepest first.
func unmountUnder(dir string) error {
	mounts, err := mountsUnder("/proc/self/mountinfo", dir)
	if err != nil {
		return err
	}
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unmount %s: %w", m, err)
		}
	}
	return nil
}

// mountsUnder lists the mount points below dir in a mountinfo file,
// deepest first.
func mountsUnder(mountinfo, dir string) ([]string, error) {
	data, err := os.ReadFile(mountinfo)
	if err != nil {
		return nil, err
	}
	prefix := filepath.Clean(dir) + "/"
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		if mp := unescapeMountPath(fields[4]); strings.HasPrefix(mp, prefix) {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
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

// failedLogAge is how long the log of a failed build is kept.
const failedLogAge = 7 * 24 * time.Hour

// CleanLeftovers removes the work directories of builds a dead daemon
// left behind, and the logs of failed builds older than a week.
func (b *Builder) CleanLeftovers(ctx context.Context) error {
	logs, _ := filepath.Glob(filepath.Join(b.ImagesDir, "build-*.log"))
	for _, l := range logs {
		if fi, err := os.Stat(l); err == nil && time.Since(fi.ModTime()) > failedLogAge {
			os.Remove(l)
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(b.ImagesDir, ".build-*"))
	if len(dirs) == 0 {
		return nil
	}
	mode := ModeRoot
	if os.Geteuid() != 0 {
		mode = ModeUnshare
	}
	var errs []error
	for _, d := range dirs {
		errs = append(errs, removeAll(ctx, mode, d))
	}
	return errors.Join(errs...)
}
