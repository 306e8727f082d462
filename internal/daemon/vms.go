package daemon

import (
	"context"
	"path/filepath"
	"time"

	"banger/internal/api"
	"banger/internal/disk"
	"banger/internal/model"
	"banger/internal/vmm"
	"banger/internal/vmm/firecracker"
	"banger/internal/vmm/qemu"
)

// initVMs sets up what VMs need: the drivers, the overlay strategy this
// host's VMs directory supports, banger's known_hosts.
func (d *Daemon) initVMs(ctx context.Context) {
	d.bgCtx = context.WithoutCancel(ctx)
	d.monitors = map[string]context.CancelFunc{}
	d.knownHosts = &knownHosts{path: filepath.Join(d.layout.StateDir, "known_hosts")}
	fc := &firecracker.Driver{Binary: d.cfg.FirecrackerBin}
	d.drivers = map[string]vmm.Driver{model.VMMQEMU: &qemu.Driver{}, model.VMMFirecracker: fc}
	d.autoDriver, d.autoReason = autoDriver(fc, qemu.DetectAccel())
	d.reflinkOK = disk.ProbeReflink(d.layout.VMsDir)
	d.logger.Info("vm drivers", "drivers", d.driverNames(), "auto", d.autoDriver, "auto_reason", d.autoReason, "reflink", d.reflinkOK)
}

// vmmChoice is what a VM created now without --vmm gets, and why.
func (d *Daemon) vmmChoice() api.VMMChoice {
	c := api.VMMChoice{Config: d.cfg.VMM, Auto: d.autoDriver, AutoReason: d.autoReason}
	if c.Config == "" {
		c.Config = model.VMMAuto
	}
	c.Driver, _ = d.pickDriver("")
	return c
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

// dmRecheck is how long the helper's answer on dm-snapshot is trusted.
const dmRecheck = time.Minute

// overlayStrategyNow is the system overlay strategy for a VM created
// now: dm-snapshot when the helper can build one, a reflink when the VMs
// directory clones files, else a sparse copy.
func (d *Daemon) overlayStrategyNow(ctx context.Context) disk.OverlayStrategy {
	return chooseOverlayStrategy(d.helperDMSnapshot(ctx), d.reflinkOK)
}

// helperDMSnapshot asks the helper whether it can build dm-snapshots,
// at most once a minute; an unreachable helper means no.
func (d *Daemon) helperDMSnapshot(ctx context.Context) bool {
	d.dmMu.Lock()
	defer d.dmMu.Unlock()
	if !d.dmCheckedAt.IsZero() && time.Since(d.dmCheckedAt) < dmRecheck {
		return d.dmOK
	}
	ctx, cancel := context.WithTimeout(ctx, helperStatusTimeout)
	defer cancel()
	st, err := d.helper.Status(ctx)
	d.dmOK = err == nil && st.DMSnapshot
	d.dmCheckedAt = time.Now()
	return d.dmOK
}
