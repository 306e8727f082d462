package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"banger/internal/failpoint"
)

// enospcEnv is a VM environment whose state directory (the store) and
// data directory (images, VM directories) are small tmpfs mounts of
// their own, which the test fills up, with a tiny image whose overlay
// copy fits in them.
type enospcEnv struct {
	*vmEnv
	state, data string // XDG_STATE_HOME, XDG_DATA_HOME
}

func newENOSPCEnv(t *testing.T) *enospcEnv {
	t.Helper()
	x := &enospcEnv{state: tmpfsMount(t, "64m"), data: tmpfsMount(t, "256m")}
	x.vmEnv = newVMEnvAs(t, os.Getuid(), "", func(e *vmEnv) {
		e.env = append(e.env, "XDG_STATE_HOME="+x.state, "XDG_DATA_HOME="+x.data)
	})
	// A tiny root file system: the overlay copies it, nothing boots it.
	rootfs := filepath.Join(t.TempDir(), "tiny.ext4")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", rootfs, "16M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs tiny rootfs: %v %s", err, out)
	}
	x.must("image", "register", "--name", "tiny", "--kernel", x.image.Kernel, "--rootfs", rootfs, "--initrd", x.image.Initrd)
	return x
}

// tmpfsMount mounts a tmpfs of size and returns its mount point;
// cleanup unmounts it.
func tmpfsMount(t *testing.T, size string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "banger-enospc")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0755", "tmpfs", dir).CombinedOutput(); err != nil {
		os.Remove(dir)
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() {
		exec.Command("umount", "-l", dir).Run()
		os.Remove(dir)
	})
	return dir
}

// fill writes a file in dir until the file system is full, and returns
// a function that removes it again.
func fill(t *testing.T, dir string) func() {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, chunk := range []int{1 << 20, 4 << 10, 512} {
		buf := make([]byte, chunk)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("fill %s: %v", dir, err)
				}
				break
			}
		}
	}
	f.Close()
	return func() { os.Remove(path) }
}

// tinyVM makes a created VM from the tiny image.
func (x *enospcEnv) tinyVM(name string) {
	x.t.Helper()
	x.must("vm", "create", "--no-start", "--image", "tiny", "--disk", "64M", "--overlay-size", "64M", "--name", name)
}

// snapshot lists every file under dir with its size and modification
// time, to show a failure left the previous state exactly as it was.
func snapshot(t *testing.T, dir string, skip ...string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil || slices.Contains(skip, filepath.Base(path)) {
			return nil
		}
		rel := strings.TrimPrefix(path, dir)
		if fi.IsDir() { // a directory's time moves when a file comes and goes in it
			out = append(out, rel+"/")
			return nil
		}
		out = append(out, fmt.Sprintf("%s %d %s", rel, fi.Size(), fi.ModTime().Format(time.RFC3339Nano)))
		return nil
	})
	sort.Strings(out)
	return out
}

// wantNoSpace checks a command failed saying the disk is full.
func wantNoSpace(t *testing.T, what string, r result) {
	t.Helper()
	if r.code != 1 || !strings.Contains(r.stderr, "no space left on device") {
		t.Errorf("%s on a full file system: exit %d, want 1 and an error saying \"no space left on device\":\n%s", what, r.code, r.stderr)
	} else {
		t.Logf("%s on a full file system: %s", what, lastLines(r.stderr, 1))
	}
}

// TestENOSPC: each place banger writes — the store, handles.json, the
// overlay copy, the work disk build, an image build — run on a full file
// system fails with an error saying so, and leaves what was there before
// as it was: the record unchanged, no half-made VM, image or file.
func TestENOSPC(t *testing.T) {
	x := newENOSPCEnv(t)
	x.tinyVM("keep")
	keepDir := x.show("keep").Runtime.VMDir
	vmsDir := filepath.Join(x.data, "banger", "vms")
	top := x.t
	defer func() { x.t = top }()

	t.Run("store", func(t *testing.T) { x.t = t; testENOSPCStore(t, x) })
	t.Run("overlay copy", func(t *testing.T) {
		x.t = t
		before := snapshot(t, x.data, "filler")
		defer fill(t, x.data)()
		wantNoSpace(t, "vm create (overlay copy)", x.banger("vm", "create", "--no-start", "--image", "tiny", "--disk", "64M", "--overlay-size", "64M", "--name", "full"))
		x.checkUnchanged(t, before, "full")
	})
	t.Run("handles.json", func(t *testing.T) {
		x.t = t
		before := snapshot(t, keepDir)
		defer fill(t, x.data)()
		wantNoSpace(t, "vm start (handles.json)", x.banger("vm", "start", "keep"))
		det := x.show("keep")
		if det.State == "running" || det.Runtime.TapDevice != "" || !strings.Contains(det.Runtime.LastError, "no space left on device") {
			t.Errorf("after the failed start: state %s, tap %q, last error %q", det.State, det.Runtime.TapDevice, det.Runtime.LastError)
		}
		if after := snapshot(t, keepDir); !slices.Equal(before, after) {
			t.Errorf("the VM's directory changed:\nbefore %v\nafter  %v", before, after)
		}
		if pids := qemuFor(vmsDir); len(pids) > 0 {
			t.Errorf("a VMM runs: %v", pids)
		}
	})
	t.Run("work disk", func(t *testing.T) { x.t = t; testENOSPCWorkDisk(t, x) })
	t.Run("image build", func(t *testing.T) {
		x.t = t
		before := snapshot(t, x.data, "filler")
		defer fill(t, x.data)()
		r := x.banger("image", "build", "--name", "full")
		wantNoSpace(t, "image build", r)
		if images := filepath.Join(x.data, "banger", "images"); !strings.Contains(r.stderr, "no space left on device in "+images+", where images are built") {
			t.Errorf("the build's error does not say where space ran out (%s):\n%s", images, r.stderr)
		}
		if out := x.must("image", "ls").stdout; strings.Contains(out, "full") {
			t.Errorf("a failed build left an image:\n%s", out)
		}
		x.checkUnchanged(t, before, "", "/banger/images/build-") // a failed build keeps its log, by design
	})
}

// testENOSPCStore: with the store's file system full, a change to a VM
// fails, saying so, and its record keeps what it had; once there is room
// again the same change goes through.
func testENOSPCStore(t *testing.T, x *enospcEnv) {
	free := fill(t, x.state)
	r := x.banger("vm", "set", "keep", "--memory", "768M")
	wantNoSpace(t, "vm set (store)", r)
	wantNoSpace(t, "vm create (store)", x.banger("vm", "create", "--no-start", "--image", "tiny", "--name", "full"))
	free()
	if det := x.show("keep"); det.Spec.MemoryMiB != 512 {
		t.Errorf("after the failed set the record says %d MiB, want the 512 it had", det.Spec.MemoryMiB)
	}
	if out := x.must("vm", "ls").stdout; strings.Contains(out, "full") {
		t.Errorf("a failed create left a VM:\n%s", out)
	}
	x.must("vm", "set", "keep", "--memory", "768M")
	x.must("vm", "set", "keep", "--memory", "512M")
}

// testENOSPCWorkDisk: the data file system fills while a create is
// between its overlay and its work disk (a failpoint holds it there):
// the work disk build fails, saying so, and the create leaves nothing.
func testENOSPCWorkDisk(t *testing.T, x *enospcEnv) {
	before := snapshot(t, x.data)
	fp := filepath.Join(t.TempDir(), "failpoint")
	armed := append(slices.Clone(x.env), failpoint.EnvPoint+"=vm.create:work disk", failpoint.EnvFile+"="+fp)
	x.banger("daemon", "stop")
	defer x.banger("daemon", "stop") // the next command starts an unarmed one
	args := []string{"vm", "create", "--no-start", "--image", "tiny", "--disk", "64M", "--overlay-size", "64M", "--name", "full"}
	cmd := x.ns.Cmd(filepath.Join(x.bin, "banger"), args...)
	done := make(chan result, 1)
	go func() { done <- runCLI(t, cmd, armed, args) }()
	for i := 0; ; i++ {
		if _, err := os.Stat(fp); err == nil {
			break
		}
		if i == 3000 {
			t.Fatal("the create never reached its work disk")
		}
		time.Sleep(10 * time.Millisecond)
	}
	defer fill(t, x.data)()
	os.Remove(fp)
	wantNoSpace(t, "vm create (work disk)", <-done)
	x.checkUnchanged(t, before, "full")
}

// checkUnchanged: the data directory is as it was (but for the filler
// and files under the allowed prefixes) and no VM named vm exists.
func (x *enospcEnv) checkUnchanged(t *testing.T, before []string, vm string, allowed ...string) {
	t.Helper()
	after := slices.DeleteFunc(snapshot(t, x.data, "filler"), func(f string) bool {
		return slices.ContainsFunc(allowed, func(prefix string) bool { return strings.HasPrefix(f, prefix) })
	})
	if !slices.Equal(before, after) {
		t.Errorf("the data directory changed:\nbefore %v\nafter  %v", before, after)
	}
	if vm != "" {
		if r := x.banger("vm", "show", vm); r.code == 0 {
			t.Errorf("vm %s exists after its create failed", vm)
		}
	}
}
