package guest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func isRegular(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFREG }

func TestWaitForDeviceAppears(t *testing.T) {
	p := filepath.Join(t.TempDir(), "vda")
	go func() {
		time.Sleep(50 * time.Millisecond)
		os.WriteFile(p, nil, 0o644)
	}()
	waited, err := waitForDevice(p, 5*time.Second, isRegular)
	if err != nil {
		t.Fatal(err)
	}
	if waited < 40*time.Millisecond {
		t.Errorf("waited %v, before the file existed", waited)
	}
}

func TestWaitForDeviceTimesOut(t *testing.T) {
	p := filepath.Join(t.TempDir(), "vdb")
	if _, err := waitForDevice(p, 30*time.Millisecond, isRegular); err == nil || !strings.Contains(err.Error(), "did not appear") {
		t.Errorf("err = %v, want a timeout", err)
	}
	// Present, but the wrong kind of file.
	os.WriteFile(p, nil, 0o644)
	if _, err := waitForDevice(p, 30*time.Millisecond, isBlockDevice); err == nil || !strings.Contains(err.Error(), "not a block device") {
		t.Errorf("err = %v, want not a block device", err)
	}
}
