package imagebuild

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestCleanLeftovers(t *testing.T) {
	dir := t.TempDir()
	b := &Builder{ImagesDir: dir}
	work := filepath.Join(dir, ".build-abc", "tree", "etc")
	os.MkdirAll(work, 0o755)
	os.WriteFile(filepath.Join(work, "hostname"), []byte("x"), 0o644)
	image := filepath.Join(dir, "abc")
	os.MkdirAll(image, 0o755)
	oldLog, newLog := filepath.Join(dir, "build-old.log"), filepath.Join(dir, "build-new.log")
	os.WriteFile(oldLog, nil, 0o600)
	os.WriteFile(newLog, nil, 0o600)
	long := time.Now().Add(-8 * 24 * time.Hour)
	os.Chtimes(oldLog, long, long)

	if err := b.CleanLeftovers(context.Background()); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{filepath.Join(dir, ".build-abc"): false, image: true, oldLog: false, newLog: true} {
		if _, err := os.Stat(path); (err == nil) != want {
			t.Errorf("%s exists = %v, want %v", path, err == nil, want)
		}
	}
}

func TestMountsUnder(t *testing.T) {
	info := filepath.Join(t.TempDir(), "mountinfo")
	os.WriteFile(info, []byte(`22 1 0:21 / /proc rw - proc proc rw
98 30 0:5 / /work/images/.build-x/tree/dev/pts rw - devpts none rw
99 30 0:22 / /work/images/.build-x/tree/proc rw - proc proc rw
100 99 0:23 / /work/images/.build-x/tree/proc/sys/fs/binfmt_misc rw - binfmt_misc x rw
101 30 0:24 / /work/images/.build-x/tree/with\040space rw - tmpfs tmpfs rw
102 30 0:25 / /work/images/.build-xy/tree/proc rw - proc proc rw
`), 0o644)
	got, err := mountsUnder(info, "/work/images/.build-x")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/work/images/.build-x/tree/proc/sys/fs/binfmt_misc",
		"/work/images/.build-x/tree/with space",
		"/work/images/.build-x/tree/dev/pts",
		"/work/images/.build-x/tree/proc",
	}
	if len(got) != len(want) {
		t.Fatalf("mountsUnder = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("mountsUnder[%d] = %q, want %q (deepest first, nothing outside dir)", i, got[i], want[i])
		}
	}
}

// TestRemoveAllLeavesMountsAlone: a mount left in a build tree is
// detached, and what was mounted there is never deleted.
func TestRemoveAllLeavesMountsAlone(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	outside := t.TempDir()
	precious := filepath.Join(outside, "precious")
	os.WriteFile(precious, []byte("keep me"), 0o644)
	work := filepath.Join(t.TempDir(), ".build-z")
	mnt := filepath.Join(work, "tree", "dev")
	os.MkdirAll(mnt, 0o755)
	if err := unix.Mount(outside, mnt, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("bind mount: %v", err)
	}
	if err := removeAll(context.Background(), ModeRoot, work); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(precious); err != nil || string(data) != "keep me" {
		t.Fatalf("removeAll deleted a file behind a mount in the tree: %v", err)
	}
	if _, err := os.Stat(work); !os.IsNotExist(err) {
		t.Errorf("work dir left: %v", err)
	}
}
