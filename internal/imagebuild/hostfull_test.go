package imagebuild

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
)

// TestHostFull: a build that ran out of room on the host is told apart
// from a tree too big for --size, whether the ENOSPC is banger's own or
// in a tool's output.
func TestHostFull(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&os.PathError{Op: "write", Path: "/x/rootfs.ext4", Err: syscall.ENOSPC}, true},
		{fmt.Errorf("mmdebstrap: exit status 25: E: cannot copy /etc/resolv.conf: No space left on device"), true},
		{fmt.Errorf("mkfs.ext4: Could not allocate block in ext2 filesystem while populating file system"), false},
		{errors.New("mmdebstrap: exit status 1: E: apt-get update failed"), false},
	} {
		if got := hostFull(tc.err); got != tc.want {
			t.Errorf("hostFull(%q) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
