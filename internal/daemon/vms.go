package daemon

import (
	"context"
	"path/filepath"
	"time"

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
	d.reflinkOK = disk.ProbeReflink(d.layout.VMsDir)
	d.logger.Info("vm drivers", "drivers", d.driverNames(), "auto", d.autoDriver, "reflink", d.reflinkOK)
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
