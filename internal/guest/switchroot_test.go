package guest

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func devOf(t *testing.T, p string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Dev
}

// makeTree creates files, directories and symlinks under dir the way an
// initramfs has them.
func makeTree(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{"lib/modules/6.1.0/kernel/drivers", "etc/banger", "dev", "proc", "sys", "newroot"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"init", "etc/banger/modules.load", "lib/modules/6.1.0/kernel/drivers/virtio.ko"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A symlink to a directory: removed as a link, its target not entered.
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "keep"), []byte("x"), 0o644)
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := os.Stat(filepath.Join(outside, "keep")); err != nil {
			t.Errorf("deleteTree followed a symlink out of the tree: %v", err)
		}
	})
}

func TestDeleteTree(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, dir)
	if err := deleteTree(dir, devOf(t, dir)); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("left %d entries, e.g. %s", len(entries), entries[0].Name())
	}
}

// TestDeleteTreeStopsAtMounts mounts a tmpfs in the tree, as the new root
// is mounted in the initramfs, and checks that its files survive.
func TestDeleteTreeStopsAtMounts(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	makeTree(t, dir)
	for _, m := range []string{"newroot", "lib/modules"} {
		mnt := filepath.Join(dir, m)
		if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
			t.Fatalf("mount tmpfs: %v", err)
		}
		t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
		if err := os.WriteFile(filepath.Join(mnt, "sbin-init"), []byte("x"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if !isInitramfs(filepath.Join(dir, "newroot")) {
		t.Error("isInitramfs(tmpfs) = false")
	}
	if err := deleteTree(dir, devOf(t, dir)); err != nil {
		t.Fatal(err)
	}
	for _, keep := range []string{"newroot/sbin-init", "lib/modules/sbin-init"} {
		if _, err := os.Stat(filepath.Join(dir, keep)); err != nil {
			t.Errorf("file on another mount was deleted: %v", err)
		}
	}
	for _, gone := range []string{"init", "etc", "dev", "link"} {
		if _, err := os.Lstat(filepath.Join(dir, gone)); err == nil {
			t.Errorf("%s survived", gone)
		}
	}
}
