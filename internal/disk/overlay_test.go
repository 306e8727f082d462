package disk

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestOverlayStrategyValid(t *testing.T) {
	for _, s := range []OverlayStrategy{OverlayDMSnapshot, OverlayReflink, OverlayCopy} {
		if !s.Valid() {
			t.Errorf("%q is not Valid", s)
		}
	}
	if OverlayStrategy("snapshot").Valid() {
		t.Error(`"snapshot" is Valid`)
	}
}

func TestProbeReflink(t *testing.T) {
	for _, tc := range []struct {
		fstype string
		size   int64
		want   bool
	}{
		{"xfs", 512 << 20, true},
		{"btrfs", 256 << 20, true},
		{"ext4", 64 << 20, false},
		{"tmpfs", 16 << 20, false},
	} {
		t.Run(tc.fstype, func(t *testing.T) {
			dir := loopMount(t, tc.fstype, tc.size)
			if got := ProbeReflink(dir); got != tc.want {
				t.Errorf("ProbeReflink on %s = %v, want %v", tc.fstype, got, tc.want)
			}
			if left := listDir(t, dir); slices.ContainsFunc(left, func(n string) bool { return strings.HasPrefix(n, ".reflink-probe") }) {
				t.Errorf("probe files left: %v", left)
			}
		})
	}
}

func TestProbeReflinkMissingDir(t *testing.T) {
	if ProbeReflink(filepath.Join(t.TempDir(), "nope")) {
		t.Error("ProbeReflink of a missing directory = true")
	}
}

// TestCloneFileReflinkSharesBlocks checks that a reflinked overlay costs
// no space and that writing it leaves the image alone.
func TestCloneFileReflinkSharesBlocks(t *testing.T) {
	dir := loopMount(t, "xfs", 512<<20)
	src, dst := filepath.Join(dir, "rootfs.ext4"), filepath.Join(dir, "overlay.ext4")
	writeSparse(t, src, 256<<20, map[int64]int{0: 32 << 20, 128 << 20: 16 << 20})
	var before, after unix.Statfs_t
	syncFS(t, dir)
	if err := unix.Statfs(dir, &before); err != nil {
		t.Fatal(err)
	}
	if err := CloneFile(context.Background(), src, dst, OverlayReflink); err != nil {
		t.Fatal(err)
	}
	syncFS(t, dir)
	if err := unix.Statfs(dir, &after); err != nil {
		t.Fatal(err)
	}
	if used := int64(before.Bfree-after.Bfree) * before.Bsize; used > 1<<20 {
		t.Errorf("the clone of 48 MiB of data took %d bytes of the file system", used)
	}
	out, err := exec.Command(Tool("filefrag"), "-v", dst).CombinedOutput()
	if err != nil {
		t.Fatalf("filefrag: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "shared") {
		t.Errorf("no shared extents in the clone:\n%s", out)
	}
	if !sameContent(t, src, dst) {
		t.Fatal("the clone differs from the image")
	}
	f, err := os.OpenFile(dst, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("guest write"), 4096); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if sameContent(t, src, dst) {
		t.Error("a write to the clone shows in the image")
	}
	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("clone mode: %v %v", fi.Mode(), err)
	}
}

// TestCloneFileReflinkNoFallback: where FICLONE does not work, reflink
// fails and leaves nothing; it never quietly copies.
func TestCloneFileReflinkNoFallback(t *testing.T) {
	dir := t.TempDir()
	if ProbeReflink(dir) {
		if os.Geteuid() != 0 {
			t.Skip("the temp directory supports reflinks; an ext4 mount needs root")
		}
		dir = loopMount(t, "ext4", 64<<20)
	}
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	writeSparse(t, src, 1<<20, map[int64]int{0: 4096})
	err := CloneFile(context.Background(), src, dst, OverlayReflink)
	if err == nil || !strings.Contains(err.Error(), "FICLONE") {
		t.Fatalf("reflink without support: %v, want an error naming FICLONE", err)
	}
	if left := listDir(t, dir); !slices.Equal(withoutLostFound(left), []string{"src"}) {
		t.Errorf("left behind: %v", left)
	}
}

func withoutLostFound(names []string) []string {
	return slices.DeleteFunc(names, func(n string) bool { return n == "lost+found" })
}

func TestCloneFileCopyKeepsHoles(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "rootfs.ext4"), filepath.Join(dir, "overlay.ext4")
	const size = 64 << 20
	writeSparse(t, src, size, map[int64]int{0: 1 << 20, 10 << 20: 3 << 20, 40<<20 + 4096: 8192, size - 4096: 4096})
	if err := CloneFile(context.Background(), src, dst, OverlayCopy); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != size || fi.Mode().Perm() != 0o600 {
		t.Errorf("copy is %d bytes, mode %v; want %d, 0600", fi.Size(), fi.Mode(), size)
	}
	if a, b := allocated(t, src), allocated(t, dst); b > a+64<<10 {
		t.Errorf("copy allocates %d bytes, the source %d: holes were filled", b, a)
	}
	if !sameContent(t, src, dst) {
		t.Error("copy differs from the source")
	}
}

// TestCopyBlocksSkipsZeros covers the fallback for file systems without
// SEEK_DATA: zero blocks are read but not written.
func TestCopyBlocksSkipsZeros(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	data := make([]byte, 16<<20) // written zeros, not a hole
	copy(data[5<<20:], strings.Repeat("x", 10000))
	copy(data[len(data)-100:], strings.Repeat("y", 100))
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Truncate(int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if err := copyBlocks(context.Background(), in, out, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	out.Close()
	if got := allocated(t, dst); got > 64<<10 {
		t.Errorf("copy allocates %d bytes for 10100 bytes of data", got)
	}
	if !sameContent(t, src, dst) {
		t.Error("copy differs from the source")
	}
}

// cancelAfter is a context whose Err turns to Canceled after n calls:
// a cancellation in the middle of a copy, at a known point.
type cancelAfter struct {
	context.Context
	n atomic.Int32
}

func (c *cancelAfter) Err() error {
	if c.n.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

func TestCloneFileCancelledLeavesNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		calls int32 // Err calls before the cancel
	}{
		{"before", 0},
		{"during", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "src")
			writeSparse(t, src, 64<<20, map[int64]int{0: 48 << 20})
			ctx := &cancelAfter{Context: context.Background()}
			ctx.n.Store(tc.calls)
			err := CloneFile(ctx, src, filepath.Join(dir, "dst"), OverlayCopy)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled copy: %v, want context.Canceled", err)
			}
			if left := listDir(t, dir); !slices.Equal(left, []string{"src"}) {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

func TestCloneFileRefusesOtherStrategies(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeSparse(t, src, 4096, nil)
	for _, s := range []OverlayStrategy{OverlayDMSnapshot, ""} {
		if err := CloneFile(context.Background(), src, filepath.Join(dir, "dst"), s); err == nil {
			t.Errorf("CloneFile with %q succeeded", s)
		}
	}
	if err := CloneFile(context.Background(), filepath.Join(dir, "missing"), filepath.Join(dir, "dst"), OverlayCopy); err == nil {
		t.Error("CloneFile of a missing file succeeded")
	}
	if left := listDir(t, dir); !slices.Equal(left, []string{"src"}) {
		t.Errorf("left behind: %v", left)
	}
}

// syncFS flushes the file system dir is on, so its free space is
// current.
func syncFS(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		t.Fatal(err)
	}
}

func TestCreateSparse(t *testing.T) {
	p := filepath.Join(t.TempDir(), "system.cow")
	if err := CreateSparse(p, 1<<30); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Size() != 1<<30 || st.Blocks != 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("size %d, %d blocks allocated, mode %v; want 1 GiB, 0 blocks, 0600", fi.Size(), st.Blocks, fi.Mode().Perm())
	}
	if err := CreateSparse(p, 1<<20); err == nil {
		t.Fatal("an existing copy-on-write store was replaced")
	}
	if err := CreateSparse(p+"2", 1000); err == nil {
		t.Fatal("a size of 1000 bytes was accepted")
	}
}

func TestChooseOverlayStrategy(t *testing.T) {
	tests := []struct {
		helperDM, reflink bool
		want              OverlayStrategy
	}{
		{true, true, OverlayDMSnapshot},
		{true, false, OverlayDMSnapshot},
		{false, true, OverlayReflink},
		{false, false, OverlayCopy},
	}
	for _, tt := range tests {
		if got := ChooseOverlayStrategy(tt.helperDM, tt.reflink); got != tt.want {
			t.Errorf("ChooseOverlayStrategy(helperDM=%v, reflink=%v) = %q, want %q", tt.helperDM, tt.reflink, got, tt.want)
		}
	}
}
