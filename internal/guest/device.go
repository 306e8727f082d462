package guest

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// deviceWait is how long to wait for a disk's node to appear. virtio
// devices are probed asynchronously after their driver loads, and under
// TCG the probe can take a while on a busy host.
const deviceWait = 10 * time.Second

// isBlockDevice is the check waitForDevice uses on the real system.
func isBlockDevice(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFBLK
}

// waitForDevice polls until path exists and passes ok, or timeout
// passes. It returns how long it waited. devtmpfs creates the node as
// soon as the kernel registers the disk, so polling needs no udev.
func waitForDevice(path string, timeout time.Duration, ok func(*unix.Stat_t) bool) (time.Duration, error) {
	start := time.Now()
	interval := time.Millisecond
	for {
		var st unix.Stat_t
		err := unix.Stat(path, &st)
		if err == nil && ok(&st) {
			return time.Since(start), nil
		}
		if time.Since(start) >= timeout {
			if err == nil {
				return time.Since(start), fmt.Errorf("%s is not a block device", path)
			}
			return time.Since(start), fmt.Errorf("%s did not appear within %v: %w", path, timeout, err)
		}
		time.Sleep(interval)
		interval = min(2*interval, 20*time.Millisecond)
	}
}
