// Package binaries builds banger's programs for end-to-end tests, once
// per test binary, the way `make build` does (pure Go, CGO_ENABLED=0),
// into a directory the test then runs them from. The directory is
// removed when the test binary exits, however it exits.
package binaries

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// held keeps the write ends of the pipes buildDir's watchers wait on
// open (and out of reach of the garbage collector, which would close
// them) until the process exits.
var (
	heldMu sync.Mutex
	held   []*os.File
)

// buildDir makes a temporary directory that is removed once this
// process has exited — passed, failed, panicked, timed out or killed —
// since nothing in the process runs for some of those: a watcher
// process reads a pipe that only this process holds open, gets end of
// file when the kernel closes it at exit, and then removes the
// directory. The watcher has a process group of its own, so the Ctrl-C
// that stops the tests does not stop it first.
func buildDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	r, w, err := os.Pipe()
	if err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	defer r.Close()
	watcher := exec.Command("sh", "-c", `cat >/dev/null; exec rm -rf -- "$1"`, "banger-test-cleanup", dir)
	watcher.Stdin = r
	watcher.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := watcher.Start(); err != nil {
		w.Close()
		os.RemoveAll(dir)
		return "", fmt.Errorf("start the watcher that removes %s at exit: %w", dir, err)
	}
	// Never waited for: it ends only after this process has.
	heldMu.Lock()
	held = append(held, w)
	heldMu.Unlock()
	return dir, nil
}

var (
	once sync.Once
	dir  string
	err  error
)

// Dir returns a directory holding banger, bangerd, banger-helper and
// banger-guest built from this tree.
func Dir(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		var root string
		if root, err = moduleRoot(); err != nil {
			return
		}
		if dir, err = buildDir("banger-bin"); err != nil {
			return
		}
		cmd := exec.Command("go", "build", "-trimpath", "-o", dir+"/",
			"./cmd/banger", "./cmd/bangerd", "./cmd/banger-helper", "./cmd/banger-guest")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, e := cmd.CombinedOutput(); e != nil {
			err = fmt.Errorf("go build: %v\n%s", e, out)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// Path is the path of one program.
func Path(t testing.TB, name string) string { return filepath.Join(Dir(t), name) }

func moduleRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.HasPrefix(string(data), "module banger") {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no banger go.mod above the working directory")
		}
		d = parent
	}
}

var (
	fcOnce sync.Once
	fcDir  string
	fcErr  error
)

// FirecrackerDouble returns a directory holding only `firecracker`,
// banger's Firecracker test double (test/fcdouble), built from this tree:
// put it on PATH, or name it as firecracker_bin, and bangerd starts it as
// it would start the real one.
func FirecrackerDouble(t testing.TB) string {
	t.Helper()
	fcOnce.Do(func() {
		var root string
		if root, fcErr = moduleRoot(); fcErr != nil {
			return
		}
		if fcDir, fcErr = buildDir("banger-fcdouble"); fcErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(fcDir, "firecracker"), "./test/fcdouble/firecracker")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, e := cmd.CombinedOutput(); e != nil {
			fcErr = fmt.Errorf("go build (firecracker test double): %v\n%s", e, out)
		}
	})
	if fcErr != nil {
		t.Fatal(fcErr)
	}
	return fcDir
}
