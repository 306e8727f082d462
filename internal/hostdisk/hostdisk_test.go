package hostdisk

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestSnapshotTable(t *testing.T) {
	got := SnapshotTable(2097152, "7:0", "7:1")
	if want := "0 2097152 snapshot 7:0 7:1 P 8"; got != want {
		t.Fatalf("table %q, want %q", got, want)
	}
}

func TestParseDMList(t *testing.T) {
	out := "banger-1000-abc\t(253:0)\nvg0-root\t(253:1)\nbanger-1000-def\t(253:2)\n"
	got := parseDMList(out, "banger-1000-")
	if len(got) != 2 || got[0] != "banger-1000-abc" || got[1] != "banger-1000-def" {
		t.Fatalf("parsed %q", got)
	}
	if got := parseDMList("No devices found\n", "banger-"); len(got) != 0 {
		t.Fatalf("empty listing parsed as %q", got)
	}
}

func needLoop(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loop devices need root")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skip("no /dev/loop-control here")
	}
}

func backingFile(t *testing.T, size int, fill byte, flag int) *os.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), "backing")
	if err := os.WriteFile(p, bytes.Repeat([]byte{fill}, size), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, flag, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestAttachLoop attaches a file read-only, reads it through the device,
// is refused a write, and sees the device detach itself once closed.
func TestAttachLoop(t *testing.T) {
	needLoop(t)
	f := backingFile(t, 1<<20, 'b', os.O_RDONLY)
	loop, err := AttachLoop(f, true)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	if _, err := io.ReadFull(loop.Dev, buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, bytes.Repeat([]byte{'b'}, 4096)) {
		t.Fatalf("read %q… through %s", buf[:8], loop.Path)
	}
	if n, err := Sectors(loop.Dev); err != nil || n != 2048 {
		t.Fatalf("sectors %d, %v; want 2048", n, err)
	}
	if num, err := DevNumber(loop.Dev); err != nil || num[:2] != "7:" {
		t.Fatalf("dev number %q, %v; want 7:N", num, err)
	}
	if w, err := os.OpenFile(loop.Path, os.O_WRONLY, 0); err == nil {
		_, werr := w.Write(buf)
		w.Close()
		if werr == nil {
			t.Fatalf("wrote to read-only %s", loop.Path)
		}
	}
	if ok, err := Attached(loop.Path); !ok || err != nil {
		t.Fatalf("attached while open: %v, %v", ok, err)
	}
	if err := loop.Close(); err != nil {
		t.Fatal(err)
	}
	if ok, err := Attached(loop.Path); ok || err != nil {
		t.Fatalf("%s still attached after its last close (autoclear): %v, %v", loop.Path, ok, err)
	}
}

// TestSnapshot builds a dm-snapshot where device-mapper exists: writes
// land in the copy-on-write file, the origin keeps its bytes, and the
// writes are there again after the device is removed and re-created.
func TestSnapshot(t *testing.T) {
	needLoop(t)
	ctx := context.Background()
	if ok, detail := DMAvailable(ctx); !ok {
		t.Skipf("no device-mapper here: %s", detail)
	}
	base := backingFile(t, 8<<20, 'o', os.O_RDONLY)
	cow := backingFile(t, 4<<20, 0, os.O_RDWR)
	name := "banger-test-" + filepath.Base(t.TempDir())
	attach := func() string {
		bl, err := AttachLoop(base, true)
		if err != nil {
			t.Fatal(err)
		}
		defer bl.Close()
		cl, err := AttachLoop(cow, false)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		path, err := CreateSnapshot(ctx, name, bl.Dev, cl.Dev, uint32(os.Getuid()))
		if err != nil {
			t.Fatal(err)
		}
		return path
	}
	path := attach()
	t.Cleanup(func() { RemoveDM(ctx, name) })
	dev, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dev.WriteAt(bytes.Repeat([]byte{'w'}, 4096), 0); err != nil {
		t.Fatal(err)
	}
	dev.Sync()
	dev.Close()
	if err := RemoveDM(ctx, name); err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 4096)
	if _, err := base.ReadAt(head, 0); err != nil || head[0] != 'o' {
		t.Fatalf("origin changed: %q, %v", head[:4], err)
	}
	path = attach()
	dev, err = os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if _, err := dev.ReadAt(head, 0); err != nil || head[0] != 'w' {
		t.Fatalf("write lost across re-creation: %q, %v", head[:4], err)
	}
	if exists, err := DMExists(ctx, name); !exists || err != nil {
		t.Fatalf("DMExists: %v, %v", exists, err)
	}
}

func TestDMAvailableSaysWhy(t *testing.T) {
	ok, detail := DMAvailable(context.Background())
	if detail == "" {
		t.Fatalf("DMAvailable = %v with no detail", ok)
	}
	t.Logf("dm-snapshot: %v (%s)", ok, detail)
}
