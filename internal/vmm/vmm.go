// Package vmm defines what banger needs from a virtual machine monitor —
// start a VM from a spec, stop it gracefully, kill it, wait for it,
// describe it — and the process bookkeeping every driver shares. The
// drivers (qemu, firecracker) live in sub-packages; the daemon picks one
// per VM and keeps it for the VM's life.
//
// A VMM runs as the daemon's user in a session of its own, with its
// console and its own output going to files, so it outlives a daemon
// restart. A Handle identifies it durably: pid *and* process start time,
// since a pid alone may have been reused by the time a new daemon looks.
package vmm

import (
	"context"
	"errors"
	"fmt"
	"net"
)

// Spec is everything a driver needs to boot one VM.
type Spec struct {
	VMID string
	Name string
	// Dir is the VM's directory: the driver puts its control socket and
	// its own log there.
	Dir string

	KernelPath string
	InitrdPath string // "" for none
	// Cmdline is the kernel command line banger wants (root device,
	// console, what the guest program needs). A driver may append what
	// its machine needs (clock parameters under emulation, for example).
	Cmdline string

	VCPUs     int
	MemoryMiB int

	// RootDisk is the system overlay, the guest's /dev/vda; WorkDisk the
	// work disk, /dev/vdb. Both are raw images the VMM may write.
	RootDisk string
	WorkDisk string

	// Tap is the host tap device the guest's one NIC uses, owned by the
	// daemon's user; MAC its address.
	Tap string
	MAC string

	// VSockCID is the guest's vsock context id (>= 3); VSockPath where a
	// driver that supports vsock puts its host-side socket.
	VSockCID  uint32
	VSockPath string

	// ConsoleLog receives the guest's serial console, appended.
	ConsoleLog string
	// MetricsPath is where a driver that reports metrics writes them ("":
	// its default in Dir).
	MetricsPath string

	// ControlSocket is where the VMM's control channel listens (QMP,
	// Firecracker's API). A unix socket path must fit in 107 bytes, so
	// the daemon puts it in its short runtime directory; "" means the
	// driver's default in Dir.
	ControlSocket string
}

// Validate checks what every driver needs.
func (s Spec) Validate() error {
	switch {
	case s.VMID == "" || s.Dir == "":
		return errors.New("vm spec: id and directory are required")
	case s.KernelPath == "" || s.RootDisk == "":
		return errors.New("vm spec: kernel and root disk are required")
	case s.VCPUs < 1 || s.MemoryMiB < 64:
		return errors.New("vm spec: at least 1 vCPU and 64 MiB")
	case s.ConsoleLog == "":
		return errors.New("vm spec: console log path is required")
	}
	if s.Tap != "" {
		if _, err := net.ParseMAC(s.MAC); err != nil || len(s.MAC) != len("52:54:00:00:00:00") {
			return fmt.Errorf("vm spec: MAC %q is not of the form 52:54:00:12:34:56", s.MAC)
		}
	}
	if s.VSockCID != 0 && s.VSockCID < 3 {
		return fmt.Errorf("vm spec: vsock CID %d is reserved (want >= 3)", s.VSockCID)
	}
	return nil
}

// Handle identifies a running VMM across daemon restarts. It is what
// handles.json keeps for the VMM.
type Handle struct {
	Driver string `json:"driver"`
	PID    int    `json:"pid"`
	// StartTime is the process's start time in clock ticks since boot
	// (field 22 of /proc/PID/stat): with the pid, it tells the VMM from a
	// process that got its pid later.
	StartTime uint64 `json:"start_time"`
	// ControlSocket is the VMM's control channel (QMP, Firecracker's API).
	ControlSocket string `json:"control_socket"`
}

// Check is what every driver asks of a Handle before it stops, kills or
// describes the VMM: that it is the handle of driver (its Name), with a
// pid and a control socket. control names that socket in the error
// ("QMP socket", "API socket"). The start time is not checked: a handle
// whose start time does not match the pid's process is a VMM that is
// gone (see Alive), not a bad handle.
func (h Handle) Check(driver, control string) error {
	switch {
	case h.Driver != driver:
		return fmt.Errorf("handle of driver %q given to the %s driver", h.Driver, driver)
	case h.PID <= 0:
		return fmt.Errorf("%s handle has no pid", driver)
	case h.ControlSocket == "":
		return fmt.Errorf("%s handle has no %s", driver, control)
	}
	return nil
}

// State is what Describe reports.
type State string

const (
	StateRunning State = "running" // the guest is running
	StatePaused  State = "paused"
	StateExited  State = "exited" // the VMM is gone
	StateUnknown State = "unknown"
)

// Description is what a driver can tell about a running VM.
type Description struct {
	Driver string `json:"driver"`
	State  State  `json:"state"`
	PID    int    `json:"pid"`
	// Detail is driver-specific: QEMU's run state, Firecracker's.
	Detail string `json:"detail,omitempty"`
}

// Driver is a VMM implementation.
type Driver interface {
	// Name is the driver's name as VMs record it: "qemu", "firecracker".
	Name() string
	// Start launches the VMM for spec and returns once it runs the guest
	// (booting has begun). The process must outlive the caller.
	Start(ctx context.Context, spec Spec) (Handle, error)
	// Stop asks the guest to shut down (ACPI power button, Ctrl-Alt-Del)
	// and returns when the VMM has exited, or ctx's error when it has not
	// by then; the caller decides whether to Kill.
	Stop(ctx context.Context, h Handle) error
	// Kill ends the VMM at once. Killing one already gone is not an error.
	Kill(h Handle) error
	// Describe reports the VMM's state.
	Describe(ctx context.Context, h Handle) (Description, error)
}

// ErrExited is returned by Describe and Stop for a VMM that is gone.
var ErrExited = errors.New("vmm has exited")
