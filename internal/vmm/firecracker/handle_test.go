package firecracker

import (
	"context"
	"errors"
	"testing"

	"banger/internal/vmm"
)

// TestHandleChecks: Stop, Kill and Describe refuse a handle that is not a
// whole firecracker handle, naming the driver, before acting on it.
func TestHandleChecks(t *testing.T) {
	d := &Driver{}
	ctx := context.Background()
	for _, tc := range []struct {
		h    vmm.Handle
		want string
	}{
		{vmm.Handle{Driver: "qemu", PID: 1, ControlSocket: "/x"}, `handle of driver "qemu" given to the firecracker driver`},
		{vmm.Handle{Driver: "firecracker", ControlSocket: "/x"}, "firecracker handle has no pid"},
		{vmm.Handle{Driver: "firecracker", PID: 1}, "firecracker handle has no API socket"},
	} {
		if err := d.Stop(ctx, tc.h); err == nil || errors.Is(err, vmm.ErrExited) || err.Error() != tc.want {
			t.Errorf("Stop(%+v) = %v; want %s", tc.h, err, tc.want)
		}
		if _, err := d.Describe(ctx, tc.h); err == nil || err.Error() != tc.want {
			t.Errorf("Describe(%+v) = %v; want %s", tc.h, err, tc.want)
		}
		if err := d.Kill(tc.h); err == nil || err.Error() != tc.want {
			t.Errorf("Kill(%+v) = %v; want %s", tc.h, err, tc.want)
		}
	}
}
