// Package qemu is banger's QEMU driver: it boots a VM with
// qemu-system-x86_64 -M microvm (virtio-mmio disks and NIC, the PVH
// vmlinux loaded directly), on KVM when the host has a KVM that runs
// ordinary guests and under TCG emulation otherwise, and controls it
// through QMP.
//
// QEMU runs in a session of its own with its output in the VM's
// directory and its monitor on a unix socket there, so a daemon restart
// neither stops it nor loses it: a Driver given only the vmm.Handle of a
// VM started by an earlier process describes, stops and kills it.
package qemu

import (
	"context"
	"fmt"

	"banger/internal/vmm"
)

var _ vmm.Driver = (*Driver)(nil)

// DriverName is the name VMs record for this driver.
const DriverName = "qemu"

// Files the driver keeps in a VM's directory.
const (
	// QMPSocket is QEMU's monitor socket.
	QMPSocket = "qmp.sock"
	// LogFile receives QEMU's own output (not the guest's console).
	LogFile = "qemu.log"
)

// Driver starts and controls QEMU VMs. The zero value is ready to use.
type Driver struct {
	// Binary is the QEMU program, looked up on PATH when it has no
	// slash; "" means qemu-system-x86_64.
	Binary string
	// Accel is "" or AccelAuto to use DetectAccel's choice, or AccelKVM
	// or AccelTCG to force one.
	Accel Accel
	// Wrap, when set, rewrites the command line before it runs; tests use
	// it to start QEMU inside a network namespace (ip netns exec NS ...).
	// The wrapper must exec QEMU, so that the pid started is QEMU's.
	Wrap func(argv []string) []string
}

// Name is "qemu".
func (d *Driver) Name() string { return DriverName }

// ResolveAccel is the accelerator Start will use and why.
func (d *Driver) ResolveAccel() (AccelDecision, error) {
	switch d.Accel {
	case "", AccelAuto:
		return DetectAccel(), nil
	case AccelKVM:
		return AccelDecision{Accel: AccelKVM, Reason: "KVM: configured"}, nil
	case AccelTCG:
		return AccelDecision{Accel: AccelTCG, Reason: "TCG (emulation): configured"}, nil
	}
	return AccelDecision{}, fmt.Errorf("qemu accelerator %q: want auto, kvm or tcg", d.Accel)
}

func (d *Driver) binary() string {
	if d.Binary == "" {
		return "qemu-system-x86_64"
	}
	return d.Binary
}

// Stop presses the guest's ACPI power button (QMP system_powerdown) and
// waits until QEMU has exited or ctx ends. The guest must act on the
// button: a systemd guest does through systemd-logind, which Debian only
// runs when D-Bus is installed. It returns vmm.ErrExited if QEMU was
// gone already.
func (d *Driver) Stop(ctx context.Context, h vmm.Handle) error {
	if err := checkHandle(h); err != nil {
		return err
	}
	if !vmm.Alive(h) {
		return vmm.ErrExited
	}
	err := withQMP(ctx, h, func(q *QMP) error {
		return q.Execute(ctx, "system_powerdown", nil, nil)
	})
	if err != nil {
		if !vmm.Alive(h) {
			return nil // it went away while we asked
		}
		return fmt.Errorf("stop qemu (pid %d): %w", h.PID, err)
	}
	if err := vmm.Wait(ctx, h); err != nil {
		// Most often a guest with nothing acting on the button.
		return fmt.Errorf("qemu (pid %d) still runs after the ACPI power button was pressed (the guest needs systemd-logind, or acpid, to power off): %w", h.PID, err)
	}
	return nil
}

// Kill sends QEMU SIGKILL and waits (briefly) until it is gone, so the
// caller can release its tap and disks.
func (d *Driver) Kill(h vmm.Handle) error {
	if err := checkHandle(h); err != nil {
		return err
	}
	return vmm.KillAndWait(h)
}

// Describe asks QEMU for the guest's run state (QMP query-status).
func (d *Driver) Describe(ctx context.Context, h vmm.Handle) (vmm.Description, error) {
	desc := vmm.Description{Driver: DriverName, State: vmm.StateUnknown, PID: h.PID}
	if err := checkHandle(h); err != nil {
		return desc, err
	}
	if !vmm.Alive(h) {
		desc.State = vmm.StateExited
		return desc, vmm.ErrExited
	}
	var st runStatus
	err := withQMP(ctx, h, func(q *QMP) error {
		return q.Execute(ctx, "query-status", nil, &st)
	})
	if err != nil {
		if !vmm.Alive(h) {
			desc.State = vmm.StateExited
			return desc, vmm.ErrExited
		}
		return desc, fmt.Errorf("describe qemu (pid %d): %w", h.PID, err)
	}
	desc.State = st.state()
	desc.Detail = st.Status
	return desc, nil
}

// runStatus is query-status's reply.
type runStatus struct {
	Status  string `json:"status"`
	Running bool   `json:"running"`
}

// state maps QEMU's run state onto banger's. QEMU stops the guest's
// CPUs for several reasons besides a pause (a disk error, a migration,
// start-up before the guest runs); those are paused too, with the reason
// in Detail. The rest (shutdown, guest-panicked, internal-error, ...)
// are a VM that will not run again as it is.
func (s runStatus) state() vmm.State {
	if s.Running {
		return vmm.StateRunning
	}
	switch s.Status {
	case "paused", "suspended", "io-error", "prelaunch", "debug", "inmigrate",
		"postmigrate", "finish-migrate", "save-vm", "restore-vm":
		return vmm.StatePaused
	}
	return vmm.StateUnknown
}

// withQMP runs fn on a QMP connection to h's QEMU, closed afterwards.
func withQMP(ctx context.Context, h vmm.Handle, fn func(*QMP) error) error {
	q, err := DialQMP(ctx, h.ControlSocket)
	if err != nil {
		return err
	}
	defer q.Close()
	return fn(q)
}

// checkHandle is vmm.Handle.Check for this driver.
func checkHandle(h vmm.Handle) error { return h.Check(DriverName, "QMP socket") }
