package vmm

import "testing"

func TestHandleCheck(t *testing.T) {
	good := Handle{Driver: "qemu", PID: 42, StartTime: 7, ControlSocket: "/run/banger/vm1.qmp"}
	if err := good.Check("qemu", "QMP socket"); err != nil {
		t.Errorf("Check(good) = %v", err)
	}
	// The start time is the liveness check's business, not this one's.
	noStart := good
	noStart.StartTime = 0
	if err := noStart.Check("qemu", "QMP socket"); err != nil {
		t.Errorf("Check(no start time) = %v", err)
	}
	for _, tc := range []struct {
		name string
		h    Handle
		want string
	}{
		{"other driver", Handle{Driver: "firecracker", PID: 42, ControlSocket: "/s"}, `handle of driver "firecracker" given to the qemu driver`},
		{"no driver", Handle{PID: 42, ControlSocket: "/s"}, `handle of driver "" given to the qemu driver`},
		{"no pid", Handle{Driver: "qemu", ControlSocket: "/s"}, "qemu handle has no pid"},
		{"negative pid", Handle{Driver: "qemu", PID: -1, ControlSocket: "/s"}, "qemu handle has no pid"},
		{"no control socket", Handle{Driver: "qemu", PID: 42}, "qemu handle has no QMP socket"},
		{"driver checked first", Handle{Driver: "firecracker"}, `handle of driver "firecracker" given to the qemu driver`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.h.Check("qemu", "QMP socket")
			if err == nil || err.Error() != tc.want {
				t.Errorf("Check(%+v) = %v; want %s", tc.h, err, tc.want)
			}
		})
	}
	fc := Handle{Driver: "firecracker", PID: 42}
	if err := fc.Check("firecracker", "API socket"); err == nil || err.Error() != "firecracker handle has no API socket" {
		t.Errorf("Check(firecracker without socket) = %v", err)
	}
}
