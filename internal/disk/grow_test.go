package disk

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// mkext4 makes an ext4 image of size bytes holding a file "hello".
func mkext4(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	if err := os.Mkdir(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "hello"), []byte("still here\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "disk.ext4")
	if _, err := run(context.Background(), "mkfs.ext4", "-q", "-F", "-d", tree, img, strconv.FormatInt(size/1024, 10)+"k"); err != nil {
		t.Fatal(err)
	}
	return img
}

// fsBytes is the file system's size as dumpe2fs reports it.
func fsBytes(t *testing.T, img string) int64 {
	t.Helper()
	out, err := run(context.Background(), "dumpe2fs", "-h", img)
	if err != nil {
		t.Fatal(err)
	}
	field := func(name string) int64 {
		m := regexp.MustCompile(`(?m)^` + name + `:\s+(\d+)$`).FindStringSubmatch(string(out))
		if m == nil {
			t.Fatalf("dumpe2fs -h has no %q:\n%s", name, out)
		}
		n, _ := strconv.ParseInt(m[1], 10, 64)
		return n
	}
	return field("Block count") * field("Block size")
}

func TestGrow(t *testing.T) {
	ctx := context.Background()
	img := mkext4(t, 64<<20)
	if got := fsBytes(t, img); got != 64<<20 {
		t.Fatalf("made a %d-byte file system, want 64 MiB", got)
	}
	if err := Grow(ctx, img, 256<<20); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(img)
	if fi.Size() != 256<<20 || fsBytes(t, img) != 256<<20 {
		t.Errorf("after Grow: file %d bytes, file system %d; want 256 MiB both", fi.Size(), fsBytes(t, img))
	}
	if a := allocated(t, img); a > 64<<20 {
		t.Errorf("Grow wrote data: %d bytes allocated", a)
	}
	if got := catExt(t, img, "/hello"); got != "still here\n" {
		t.Errorf("content after Grow: %q", got)
	}
	if ok, err := checkFS(ctx, img); !ok {
		t.Errorf("file system damaged by Grow: %v", err)
	}

	// The same size again does nothing at all.
	before, _ := os.Stat(img)
	if err := Grow(ctx, img, 256<<20); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.Stat(img); !after.ModTime().Equal(before.ModTime()) {
		t.Error("Grow to the current size touched the image")
	}

	err := Grow(ctx, img, 128<<20)
	if !errors.Is(err, ErrShrink) || !strings.Contains(err.Error(), "shrinking is not supported") {
		t.Errorf("Grow to a smaller size: %v, want ErrShrink", err)
	}
	if fi, _ := os.Stat(img); fi.Size() != 256<<20 {
		t.Errorf("a refused shrink changed the file to %d bytes", fi.Size())
	}
}

// TestGrowResumes: a Grow that extended the file but died before
// resize2fs finished is completed by the next one of the same size.
func TestGrowResumes(t *testing.T) {
	img := mkext4(t, 64<<20)
	if err := os.Truncate(img, 128<<20); err != nil {
		t.Fatal(err)
	}
	if err := Grow(context.Background(), img, 128<<20); err != nil {
		t.Fatal(err)
	}
	if got := fsBytes(t, img); got != 128<<20 {
		t.Errorf("file system is %d bytes, want 128 MiB", got)
	}
}

func TestGrowRefusesNonExt4(t *testing.T) {
	p := filepath.Join(t.TempDir(), "zeros")
	if err := os.WriteFile(p, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Grow(context.Background(), p, 2<<20); err == nil || !strings.Contains(err.Error(), "not an ext4 file system") {
		t.Errorf("Grow of zeros: %v", err)
	}
	if fi, _ := os.Stat(p); fi.Size() != 1<<20 {
		t.Error("Grow changed a file that is not ext4")
	}
}

func TestGrowWorkDisk(t *testing.T) {
	ctx := context.Background()
	img := mkext4(t, 64<<20)
	if err := GrowWorkDisk(ctx, img, 96<<20); err != nil {
		t.Fatal(err)
	}
	if got := fsBytes(t, img); got != 96<<20 {
		t.Errorf("work disk file system is %d bytes, want 96 MiB", got)
	}
	err := GrowWorkDisk(ctx, img, 32<<20)
	if !errors.Is(err, ErrShrink) || err.Error() != "work disk is 96M; asked for 32M, but work disks only grow: shrinking is not supported" {
		t.Errorf("shrinking a work disk: %v", err)
	}
}

// checkFS runs a read-only e2fsck.
func checkFS(ctx context.Context, img string) (bool, error) {
	_, err := run(ctx, "e2fsck", "-fn", img)
	return err == nil, err
}

// TestGrowBuiltWorkDisk: a work disk as BuildWorkDisk makes it (without
// the reserved blocks for online growth) grows offline, far past what
// those blocks would have allowed for, with its files intact.
func TestGrowBuiltWorkDisk(t *testing.T) {
	ctx := context.Background()
	spec := WorkDiskSpec{Path: filepath.Join(t.TempDir(), "work.ext4"), SizeBytes: 16 << 20,
		Files: []File{{GuestPath: "/root/.ssh/authorized_keys", Data: []byte("ssh-ed25519 AAAA test\n"), Mode: 0o600}}}
	if _, err := BuildWorkDisk(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := GrowWorkDisk(ctx, spec.Path, 64<<30); err != nil {
		t.Fatal(err)
	}
	if got := fsBytes(t, spec.Path); got != 64<<30 {
		t.Errorf("file system is %d bytes after growing, want 64 GiB", got)
	}
	if ok, err := checkFS(ctx, spec.Path); !ok {
		t.Errorf("e2fsck after growing: %v", err)
	}
	wantExt(t, spec.Path, "/.ssh/authorized_keys", 0o100600, "ssh-ed25519 AAAA test\n")
}
