package disk

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// requireRoot skips a test that needs root: loop mounts, other uids.
func requireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root (loop mounts, running as another user); CI runs as root")
	}
}

// requireTool skips a test whose program is not installed, naming the
// Debian package that has it.
func requireTool(tb testing.TB, name, pkg string) {
	tb.Helper()
	if Tool(name) == name {
		if _, err := exec.LookPath(name); err != nil {
			tb.Skipf("%s is not installed (apt-get install %s)", name, pkg)
		}
	}
}

// loopMount makes a file system of type fstype in a file and mounts it
// on a fresh directory, unmounted when the test ends, pass or fail.
func loopMount(tb testing.TB, fstype string, size int64) string {
	tb.Helper()
	requireRoot(tb)
	dir := tb.TempDir()
	img := filepath.Join(dir, fstype+".img")
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		tb.Fatal(err)
	}
	var mkfs []string
	switch fstype {
	case "xfs":
		requireTool(tb, "mkfs.xfs", "xfsprogs")
		mkfs = []string{Tool("mkfs.xfs"), "-q", "-m", "reflink=1", img}
	case "btrfs":
		requireTool(tb, "mkfs.btrfs", "btrfs-progs")
		mkfs = []string{Tool("mkfs.btrfs"), "-q", img}
	case "ext4":
		mkfs = []string{Tool("mkfs.ext4"), "-q", "-F", img}
	case "tmpfs":
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.FormatInt(size, 10), "tmpfs", mnt).CombinedOutput(); err != nil {
			tb.Fatalf("mount tmpfs: %v: %s", err, out)
		}
		tb.Cleanup(func() { unmount(tb, mnt) })
		return mnt
	default:
		tb.Fatalf("loopMount: unknown file system %q", fstype)
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		tb.Fatal(err)
	}
	if out, err := exec.Command(mkfs[0], mkfs[1:]...).CombinedOutput(); err != nil {
		tb.Fatalf("%v: %v: %s", mkfs, err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		tb.Fatalf("mount -o loop %s: %v: %s", img, err, out)
	}
	tb.Cleanup(func() { unmount(tb, mnt) })
	return mnt
}

func unmount(tb testing.TB, mnt string) {
	if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
		tb.Errorf("umount %s: %v: %s; detaching it lazily", mnt, err, out)
		exec.Command("umount", "-l", mnt).Run()
	}
}

// allocated is how many bytes of disk path uses.
func allocated(tb testing.TB, path string) int64 {
	tb.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		tb.Fatal(err)
	}
	return st.Blocks * 512
}

// writeSparse makes a size-byte file at path with data only in the
// given chunks (offset → length), each filled with a byte pattern that
// is never zero.
func writeSparse(tb testing.TB, path string, size int64, chunks map[int64]int) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		tb.Fatal(err)
	}
	pattern := make([]byte, 1<<20+4093) // not a multiple of the block size: no two blocks alike
	for i := range pattern {
		pattern[i] = byte(i%251) | 1
	}
	for off, n := range chunks {
		for done := 0; done < n; {
			k := min(n-done, 1<<20)
			start := int((off + int64(done)) % 4093)
			if _, err := f.WriteAt(pattern[start:start+k], off+int64(done)); err != nil {
				tb.Fatal(err)
			}
			done += k
		}
	}
}

// sameContent compares two files a chunk at a time: whole-file reads
// of overlay-sized files are slow under the race detector.
func sameContent(tb testing.TB, a, b string) bool {
	tb.Helper()
	fa, err := os.Open(a)
	if err != nil {
		tb.Fatal(err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		tb.Fatal(err)
	}
	defer fb.Close()
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for {
		na, erra := io.ReadFull(fa, ba)
		nb, errb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false
		}
		if erra != nil || errb != nil {
			return (erra == io.EOF || erra == io.ErrUnexpectedEOF) && (errb == io.EOF || errb == io.ErrUnexpectedEOF)
		}
	}
}

// extEntry is one line of debugfs's `ls -l`.
type extEntry struct {
	Mode     uint32 // with the type bits: 0100600, 040755, 0120777
	UID, GID int
	Size     int64
}

// debugfs runs one debugfs request against the image, read-only: the
// tests read work disks back without mounting them.
func debugfs(tb testing.TB, img, request string) string {
	tb.Helper()
	cmd := exec.Command(Tool("debugfs"), "-R", request, img)
	cmd.Env = append(os.Environ(), "DEBUGFS_PAGER=__none__", "PAGER=__none__")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("debugfs -R %q %s: %v: %s", request, img, err, stderr.String())
	}
	return stdout.String()
}

// lsExt lists a directory of the ext4 image img.
func lsExt(tb testing.TB, img, dir string) map[string]extEntry {
	tb.Helper()
	out := map[string]extEntry{}
	for _, line := range strings.Split(debugfs(tb, img, "ls -l "+dir), "\n") {
		f := strings.Fields(line)
		if len(f) < 9 {
			continue
		}
		mode, err1 := strconv.ParseUint(f[1], 8, 32)
		uid, err2 := strconv.Atoi(f[3])
		gid, err3 := strconv.Atoi(f[4])
		size, err4 := strconv.ParseInt(f[5], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			continue
		}
		out[strings.Join(f[8:], " ")] = extEntry{Mode: uint32(mode), UID: uid, GID: gid, Size: size}
	}
	return out
}

// statExt finds a path in the image; guest paths under /root are taken
// relative to the work disk's top.
func statExt(tb testing.TB, img, p string) (extEntry, bool) {
	tb.Helper()
	p = diskPath(p)
	e, ok := lsExt(tb, img, path.Dir(p))[path.Base(p)]
	return e, ok
}

// catExt is the content of a file in the image.
func catExt(tb testing.TB, img, p string) string {
	tb.Helper()
	return debugfs(tb, img, "cat "+diskPath(p))
}

func diskPath(p string) string {
	if p == "/root" || strings.HasPrefix(p, "/root/") {
		return "/" + strings.TrimPrefix(strings.TrimPrefix(p, "/root"), "/")
	}
	return p
}

// listDir names what is in dir, for checks that nothing was left.
func listDir(tb testing.TB, dir string) []string {
	tb.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
