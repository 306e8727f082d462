package helper

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"banger/internal/errdefs"
	"banger/internal/helperapi"
	"banger/internal/helperclient"
	"banger/internal/hostdisk"
	"banger/internal/rpc"
)

// serveMethods serves a helper's methods on a fresh socket without
// reconciling the host (overlay checks touch no network) and returns a
// client for it.
func serveMethods(t *testing.T) (*Helper, helperclient.Client) {
	t.Helper()
	cfg := helperapi.DefaultConfig()
	cfg.AllowedUIDs = []uint32{uint32(os.Getuid())}
	dir, err := os.MkdirTemp("", "bgho")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	h, err := New(cfg, filepath.Join(dir, "state.json"), slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	h.state = newState()
	sock := filepath.Join(dir, "h.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		(&rpc.Server{Methods: h.methods(), Authorize: h.authorize}).Serve(ctx, ln)
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return h, helperclient.Client{Socket: sock}
}

func diskFile(t *testing.T, dir, name string, size int64, flag int) *os.File {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, flag, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// openFlags opens path as the tests need it, O_PATH included (which
// os.OpenFile cannot express).
func openFlags(t *testing.T, path string, flag int) *os.File {
	t.Helper()
	fd, err := unix.Open(path, flag|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	t.Cleanup(func() { f.Close() })
	return f
}

// socketFile is one end of a socket pair, as an *os.File.
func socketFile(t *testing.T) *os.File {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fds[1])
	f := os.NewFile(uintptr(fds[0]), "socket")
	t.Cleanup(func() { f.Close() })
	return f
}

type overlayCase struct {
	name  string
	vmID  string
	files []*os.File
	kind  error
	says  string
}

// TestOverlayAttachRefusesBadInput: the helper checks the files it is
// handed before it touches any device — their number, how they were
// opened, their kind, owner and size, and the VM id that names the
// device. Each descriptor must prove on its own what the role needs.
func TestOverlayAttachRefusesBadInput(t *testing.T) {
	_, c := serveMethods(t)
	ctx := context.Background()
	dir := t.TempDir()
	image := diskFile(t, dir, "rootfs.ext4", 1<<20, os.O_RDONLY)
	imageRW := diskFile(t, dir, "rootfs-rw.ext4", 1<<20, os.O_RDWR)
	imageWO := diskFile(t, dir, "rootfs-wo.ext4", 1<<20, os.O_WRONLY)
	cow := diskFile(t, dir, "overlay.cow", 1<<20, os.O_RDWR)
	cowRO := diskFile(t, dir, "overlay-ro.cow", 1<<20, os.O_RDONLY)
	cowAppend := diskFile(t, dir, "overlay-append.cow", 1<<20, os.O_RDWR|os.O_APPEND)
	odd := diskFile(t, dir, "odd.cow", 1000, os.O_RDWR)
	empty := diskFile(t, dir, "empty.cow", 0, os.O_RDWR)
	imagePath := openFlags(t, image.Name(), unix.O_PATH)
	cowPath := openFlags(t, cow.Name(), unix.O_PATH)
	sameAsImage := openFlags(t, image.Name(), unix.O_RDWR)
	dirFile := openFlags(t, dir, unix.O_RDONLY)
	device := openFlags(t, "/dev/null", unix.O_RDONLY)
	deviceRW := openFlags(t, "/dev/null", unix.O_RDWR)
	fifoPath := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifoPath, 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := openFlags(t, fifoPath, unix.O_RDONLY)
	sock := socketFile(t)

	cases := []overlayCase{
		{"no files", "abc123", nil, errdefs.ErrInvalidArgument, "two open files"},
		{"one file", "abc123", []*os.File{image}, errdefs.ErrInvalidArgument, "got 1"},
		{"image O_PATH", "abc123", []*os.File{imagePath, cow}, errdefs.ErrInvalidArgument, "image file is an O_PATH descriptor"},
		{"cow O_PATH", "abc123", []*os.File{image, cowPath}, errdefs.ErrInvalidArgument, "copy-on-write file is an O_PATH descriptor"},
		{"image write-only", "abc123", []*os.File{imageWO, cow}, errdefs.ErrInvalidArgument, "read-only"},
		{"image read-write", "abc123", []*os.File{imageRW, cow}, errdefs.ErrInvalidArgument, "read-only"},
		{"cow read-only", "abc123", []*os.File{image, cowRO}, errdefs.ErrInvalidArgument, "read-write"},
		{"cow append-only", "abc123", []*os.File{image, cowAppend}, errdefs.ErrInvalidArgument, "O_APPEND"},
		{"image a directory", "abc123", []*os.File{dirFile, cow}, errdefs.ErrInvalidArgument, "image file is a directory, not a regular file"},
		{"image a device", "abc123", []*os.File{device, cow}, errdefs.ErrInvalidArgument, "image file is a character device, not a regular file"},
		{"cow a device", "abc123", []*os.File{image, deviceRW}, errdefs.ErrInvalidArgument, "copy-on-write file is a character device, not a regular file"},
		{"image a FIFO", "abc123", []*os.File{fifo, cow}, errdefs.ErrInvalidArgument, "image file is a FIFO, not a regular file"},
		{"cow a socket", "abc123", []*os.File{image, sock}, errdefs.ErrInvalidArgument, "copy-on-write file is a socket, not a regular file"},
		{"partial sector", "abc123", []*os.File{image, odd}, errdefs.ErrInvalidArgument, "1000 bytes, not a whole non-zero number of 512-byte sectors"},
		{"zero size", "abc123", []*os.File{image, empty}, errdefs.ErrInvalidArgument, "0 bytes, not a whole non-zero number of 512-byte sectors"},
		{"image is the cow", "abc123", []*os.File{image, sameAsImage}, errdefs.ErrInvalidArgument, "same file"},
		{"vm id with a slash", "../x", []*os.File{image, cow}, errdefs.ErrInvalidArgument, "hex"},
		{"empty vm id", "", []*os.File{image, cow}, errdefs.ErrInvalidArgument, "vm id"},
	}
	if os.Geteuid() == 0 {
		other := diskFile(t, dir, "other.cow", 1<<20, os.O_RDWR)
		if err := other.Chown(nobody, nobody); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, overlayCase{"cow another user's file", "abc123", []*os.File{image, other}, errdefs.ErrUnauthorized, "belongs to uid 65534"})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var res helperapi.OverlayInfo
			err := rpc.CallWithFiles(ctx, c.Socket, helperapi.MethodOverlayAttach, helperapi.OverlayAttachParams{VMID: tc.vmID}, &res, tc.files...)
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err = %v; want %v saying %q", err, tc.kind, tc.says)
			}
		})
	}
}

// TestOverlayAttachDetach builds a real dm-snapshot where device-mapper
// exists; elsewhere (this project's CI machines) it proves the helper
// says so, as unavailable with the reason, and that status reports it.
func TestOverlayAttachDetach(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("loop and device-mapper devices need root")
	}
	h, c := serveMethods(t)
	ctx := context.Background()
	dir := t.TempDir()
	image := diskFile(t, dir, "rootfs.ext4", 8<<20, os.O_RDONLY)
	cow := diskFile(t, dir, "overlay.cow", 4<<20, os.O_RDWR)

	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.DMSnapshotDetail == "" {
		t.Fatal("helper.status gives no dm-snapshot detail")
	}
	info, err := c.AttachOverlay(ctx, "abc123", image, cow)
	if !st.DMSnapshot {
		if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), st.DMSnapshotDetail) {
			t.Fatalf("attach without device-mapper: %v; want unavailable saying %q", err, st.DMSnapshotDetail)
		}
		if len(h.state.Overlays) != 0 {
			t.Fatalf("a refused attach left records: %v", h.state.Overlays)
		}
		t.Skipf("no device-mapper here (%s); refusal checked", st.DMSnapshotDetail)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hostdisk.RemoveDM(ctx, info.DMName) })
	if want := helperapi.DMName(uint32(os.Getuid()), "abc123"); info.DMName != want {
		t.Errorf("dm name %q, want %q", info.DMName, want)
	}
	fi, err := os.Stat(info.DMDev)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("dm node %s: %v, %v", info.DMDev, fi, err)
	}
	if _, err := c.AttachOverlay(ctx, "abc123", image, cow); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("second attach for the same VM: %v, want conflict", err)
	}
	st, _ = c.Status(ctx)
	if len(st.Overlays) != 1 || st.Overlays[0].DMName != info.DMName {
		t.Fatalf("status overlays %+v", st.Overlays)
	}
	if err := c.DetachOverlay(ctx, info.DMName); err != nil {
		t.Fatal(err)
	}
	if exists, _ := hostdisk.DMExists(ctx, info.DMName); exists {
		t.Fatalf("%s still exists after detach", info.DMName)
	}
	for _, l := range []string{info.BaseLoop, info.COWLoop} {
		if ok, _ := hostdisk.Attached(l); ok {
			t.Errorf("loop %s still attached after detach", l)
		}
	}
	if err := c.DetachOverlay(ctx, info.DMName); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("second detach: %v, want not found", err)
	}
}
