// Package binaries builds banger's programs for end-to-end tests, once
// per test binary, the way `make build` does (pure Go, CGO_ENABLED=0),
// into a directory the test then runs them from.
package binaries

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

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
		if dir, err = os.MkdirTemp("", "banger-bin"); err != nil {
			return
		}
		os.Chmod(dir, 0o755)
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
		if fcDir, fcErr = os.MkdirTemp("", "banger-fcdouble"); fcErr != nil {
			return
		}
		os.Chmod(fcDir, 0o755)
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
