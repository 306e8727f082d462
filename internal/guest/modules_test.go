package guest

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParseModulesList(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"empty", "", nil},
		{"order kept", "/lib/modules/6.1.0/kernel/drivers/virtio/virtio.ko\n/lib/modules/6.1.0/kernel/drivers/virtio/virtio_ring.ko\n",
			[]string{"/lib/modules/6.1.0/kernel/drivers/virtio/virtio.ko", "/lib/modules/6.1.0/kernel/drivers/virtio/virtio_ring.ko"}},
		{"comments and blanks", "# virtio\n\n  /a.ko  \n\t# ext4\n/b.ko", []string{"/a.ko", "/b.ko"}},
		{"relative to /", "lib/modules/x.ko\n", []string{"/lib/modules/x.ko"}},
		{"cleaned", "/lib//modules/./x.ko\n", []string{"/lib/modules/x.ko"}},
		{"crlf", "/a.ko\r\n/b.ko\r\n", []string{"/a.ko", "/b.ko"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseModulesList(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestModuleInitFlags(t *testing.T) {
	for file, want := range map[string]int{
		"/lib/modules/virtio.ko":     0,
		"/lib/modules/virtio.ko.xz":  unix.MODULE_INIT_COMPRESSED_FILE,
		"/lib/modules/virtio.ko.zst": unix.MODULE_INIT_COMPRESSED_FILE,
		"/lib/modules/virtio.ko.gz":  unix.MODULE_INIT_COMPRESSED_FILE,
	} {
		if got := moduleInitFlags(file); got != want {
			t.Errorf("moduleInitFlags(%s) = %d, want %d", file, got, want)
		}
	}
}

// TestLoadModulesKeepsGoing loads a list whose modules do not exist: each
// failure is logged and the rest are still tried. (No module file ever
// reaches finit_module here: that needs a real guest kernel.)
func TestLoadModulesKeepsGoing(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "modules.load")
	if err := os.WriteFile(list, []byte("# optional\n"+dir+"/vsock.ko\n"+dir+"/virtio_blk.ko\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if loaded, listed := loadModules(testLog(&out), list); loaded != 0 || listed != 2 {
		t.Errorf("loaded %d of %d, want 0 of 2", loaded, listed)
	}
	for _, want := range []string{"vsock.ko not loaded (continuing)", "virtio_blk.ko not loaded (continuing)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, out.String())
		}
	}
}

func TestLoadModulesWithoutList(t *testing.T) {
	var out bytes.Buffer
	if loaded, listed := loadModules(testLog(&out), filepath.Join(t.TempDir(), "missing")); loaded != 0 || listed != 0 {
		t.Errorf("loaded %d of %d", loaded, listed)
	}
	if !strings.Contains(out.String(), "loading no modules") {
		t.Errorf("log = %q", out.String())
	}
}

// testLog is a consoleLog into w with a fixed clock.
func testLog(w *bytes.Buffer) *consoleLog {
	return &consoleLog{w: w, clock: func() time.Duration { return 1500 * time.Millisecond }}
}

func TestConsoleLogFormat(t *testing.T) {
	var out bytes.Buffer
	testLog(&out).printf("mounted %s", "/dev")
	if got, want := out.String(), "banger-guest: 1.500s mounted /dev\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
