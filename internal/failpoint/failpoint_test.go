package failpoint

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// arm arms point with a file in a fresh directory for one test.
func arm(t *testing.T, point string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "fp")
	old := current
	current = armed{point: point, file: file}
	fired.Store(false)
	t.Cleanup(func() { current = old; fired.Store(false) })
	return file
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	exists := filepath.Join(dir, "left")
	os.WriteFile(exists, nil, 0o600)
	for _, tc := range []struct {
		name string
		a    armed
		want string // "" for no error
	}{
		{"unarmed", armed{}, ""},
		{"armed", armed{"vm.create:boot", filepath.Join(dir, "fp")}, ""},
		{"no file", armed{point: "vm.create:boot"}, `BANGER_FAILPOINT="vm.create:boot" is set but BANGER_FAILPOINT_FILE is not`},
		{"no point", armed{file: filepath.Join(dir, "fp")}, "BANGER_FAILPOINT_FILE is set but BANGER_FAILPOINT is not"},
		{"relative", armed{"p", "fp"}, `BANGER_FAILPOINT_FILE="fp": not an absolute path`},
		{"no dir", armed{"p", filepath.Join(dir, "nodir", "fp")}, "its directory does not exist"},
		{"left over", armed{"p", exists}, "exists already; remove it first"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.a.check()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("check: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("check: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// TestHitPausesUntilFileRemoved: the armed point writes the pid and
// waits for the file to go; other points and a second hit pass.
func TestHitPausesUntilFileRemoved(t *testing.T) {
	file := arm(t, "vm.create:boot")
	Hit("vm.create:tap") // not the armed point: no file, no pause
	if _, err := os.Stat(file); err == nil {
		t.Fatal("another point wrote the failpoint file")
	}
	done := make(chan struct{})
	go func() { Hit("vm.create:boot"); close(done) }()
	var data []byte
	for i := 0; i < 400 && len(data) == 0; i++ {
		data, _ = os.ReadFile(file)
		time.Sleep(5 * time.Millisecond)
	}
	if strings.TrimSpace(string(data)) != strconv.Itoa(os.Getpid()) {
		t.Fatalf("failpoint file holds %q, want the pid %d", data, os.Getpid())
	}
	select {
	case <-done:
		t.Fatal("Hit returned while the file was still there")
	case <-time.After(50 * time.Millisecond):
	}
	os.Remove(file)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Hit did not return after the file was removed")
	}
	Hit("vm.create:boot") // fires once per process
	if _, err := os.Stat(file); err == nil {
		t.Fatal("the point fired twice")
	}
}

func TestUnarmedHitDoesNothing(t *testing.T) {
	old := current
	current = armed{}
	defer func() { current = old }()
	Hit("vm.create:boot")
	if Armed() != "" {
		t.Fatalf("Armed() = %q unarmed", Armed())
	}
}
