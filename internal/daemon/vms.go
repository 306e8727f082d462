package daemon

import (
	"context"
	"path/filepath"

	"banger/internal/disk"
	"banger/internal/model"
	"banger/internal/vmm"
	"banger/internal/vmm/qemu"
)

// initVMs sets up what VMs need: the drivers, the overlay strategy this
// host's VMs directory supports, banger's known_hosts.
func (d *Daemon) initVMs(ctx context.Context) {
	d.bgCtx = context.WithoutCancel(ctx)
	d.monitors = map[string]context.CancelFunc{}
	d.knownHosts = &knownHosts{path: filepath.Join(d.layout.StateDir, "known_hosts")}
	d.drivers = map[string]vmm.Driver{model.VMMQEMU: &qemu.Driver{}}
	d.autoDriver = model.VMMQEMU
	d.overlayStrategy = disk.OverlayCopy
	if disk.ProbeReflink(d.layout.VMsDir) {
		d.overlayStrategy = disk.OverlayReflink
	}
	d.logger.Info("vm drivers", "drivers", d.driverNames(), "auto", d.autoDriver, "overlay_strategy", d.overlayStrategy)
}
