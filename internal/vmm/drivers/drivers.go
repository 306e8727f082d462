// Package drivers builds the VMM drivers a bangerd has, from its config,
// and decides what `vmm = auto` means on this host. It is the one place
// that knows every driver; services take the map it builds.
package drivers

import (
	"banger/internal/model"
	"banger/internal/vmm"
	"banger/internal/vmm/firecracker"
	"banger/internal/vmm/qemu"
	"slices"
)

// Set is the drivers of one bangerd.
type Set struct {
	// ByName is every driver, by the name VM records carry.
	ByName map[string]vmm.Driver
	// Auto is the driver `vmm = auto` means here, and AutoReason why.
	Auto       string
	AutoReason string
	// QEMU is the QEMU driver, which doctor asks about acceleration.
	QEMU *qemu.Driver
}

// New builds the drivers the config asks for and probes this host for
// the auto choice.
func New(cfg model.DaemonConfig) Set {
	qd := &qemu.Driver{}
	fc := &firecracker.Driver{Binary: cfg.FirecrackerBin}
	auto, reason := autoDriver(fc, qemu.DetectAccel())
	return Set{
		ByName:     map[string]vmm.Driver{model.VMMQEMU: qd, model.VMMFirecracker: fc},
		Auto:       auto,
		AutoReason: reason,
		QEMU:       qd,
	}
}

// Names are the drivers' names, sorted.
func (s Set) Names() []string {
	names := make([]string, 0, len(s.ByName))
	for n := range s.ByName {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// autoDriver is what `vmm = auto` means on this host: firecracker when
// its binary is found and KVM runs ordinary guests for this user (it has
// no emulation to fall back on), else qemu.
func autoDriver(fc *firecracker.Driver, accel qemu.AccelDecision) (driver, reason string) {
	path, err := fc.BinaryPath()
	switch {
	case err != nil:
		return model.VMMQEMU, "firecracker_bin not found (" + err.Error() + ")"
	case accel.Accel != qemu.AccelKVM:
		return model.VMMQEMU, "firecracker (" + path + ") is there but KVM cannot run guests for this user: " + accel.Reason
	}
	return model.VMMFirecracker, "firecracker (" + path + ") is there and KVM works"
}
