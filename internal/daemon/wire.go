package daemon

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"banger/internal/api"
	"banger/internal/disk"
	"banger/internal/doctor"
	"banger/internal/guestssh"
	"banger/internal/helperclient"
	"banger/internal/imagebuild"
	"banger/internal/images"
	"banger/internal/model"
	"banger/internal/operation"
	"banger/internal/opid"
	"banger/internal/oplog"
	"banger/internal/paths"
	"banger/internal/store"
	"banger/internal/tappool"
	"banger/internal/vmm/drivers"
	"banger/internal/vms"
	"banger/internal/workspace"
)

const (
	// operationShutdownLimit bounds how long shutdown waits for
	// cancelled operations to clean up (an image build removing its
	// tree).
	operationShutdownLimit = 60 * time.Second
	// operationKeep is how long finished operations stay in the store.
	operationKeep = 7 * 24 * time.Hour
	// adoptHelperTimeout bounds the helper.status call tap adoption
	// makes.
	adoptHelperTimeout = 10 * time.Second
)

// build wires bangerd together, in dependency order: the helper client
// and the tap pool on it, the operation registry, the VMM drivers, then
// the services, each given only what it uses.
func build(ctx context.Context, opts Options, st *store.Store) *Daemon {
	cfg, layout, logger := opts.Config, opts.Layout, opts.Logger
	d := &Daemon{
		layout: layout, cfg: cfg, configFound: opts.ConfigFound, logLevel: opts.LogLevel,
		logger: logger, store: st, ownerUID: uint32(os.Getuid()), started: time.Now(),
	}
	d.helper = helperclient.Client{Socket: cfg.HelperSocket}
	d.tapPool = tappool.New(d.helper, cfg.TapPoolSize, logger)
	d.ops = operation.NewRegistry(st, logger)
	drv := drivers.New(cfg)
	reflink := disk.ProbeReflink(layout.VMsDir)
	logger.Info("vm drivers", "drivers", drv.Names(), "auto", drv.Auto, "auto_reason", drv.AutoReason, "reflink", reflink)

	d.guests = &guestssh.Pool{}
	d.vms = vms.New(ctx, vms.Deps{
		Config: cfg, Layout: layout, Store: st, Logger: logger, Ops: d.ops,
		Drivers: vms.Drivers{ByName: drv.ByName, Auto: drv.Auto, AutoReason: drv.AutoReason},
		Taps:    d.tapPool, Helper: d.helper, Reflink: reflink,
		Hooks: vms.Hooks{
			// A stopped guest's SSH connection is dead; the next command
			// dials its next boot.
			Stopped: func(_ context.Context, vm model.VMRecord) { d.guests.Drop(vm.ID) },
		},
	})
	d.images = images.New(images.Deps{
		Config: cfg, Layout: layout, Store: st, Ops: d.ops, Logger: logger,
		Builder: &imagebuild.Builder{
			ImagesDir: layout.ImagesDir,
			CacheDir:  filepath.Join(layout.CacheDir, "apt-archives"),
			Guest:     imagebuild.BangerGuest(images.GuestBinary()),
		},
	})
	d.workspace = workspace.New(workspace.Deps{
		Store: st, VMs: d.vms, Guests: d.guests, Ops: d.ops, Logger: logger,
		TempDir: workspaceTempDir(layout, logger), MaxBundleBytes: cfg.HarvestMaxBundleBytes,
	})
	d.doctor = doctor.New(doctor.Deps{
		Config: cfg, Layout: layout, Store: st, Helper: d.helper, HelperSocket: d.helper.Socket,
		QEMU: drv.QEMU, Drivers: drv.Names(), VMM: d.vms.Choice, TapPool: d.tapPoolStatus, Logger: logger,
	})
	return d
}

// recover, at start-up, settles what a previous daemon left unfinished:
// operations it recorded as running can no longer be, image builds it
// was doing left work directories behind, and its VMs are adopted or
// recorded stopped.
func (d *Daemon) recover(ctx context.Context) {
	ctx = opid.Fresh(ctx)
	op := oplog.Begin(ctx, d.logger, "daemon.recover")
	n, err := d.store.InterruptOperations(ctx, "interrupted: bangerd stopped while it ran", model.Now())
	if err != nil {
		op.Fail(err)
	} else if err := d.images.Recover(ctx); err != nil {
		op.Fail(err, "interrupted_operations", n)
	} else if err := d.store.PruneOperations(ctx, time.Now().Add(-operationKeep)); err != nil {
		op.Fail(err, "interrupted_operations", n)
	} else {
		op.Done("interrupted_operations", n)
	}
	d.vms.Recover(ctx)
}

// stopOperations cancels running operations at shutdown and waits, a
// while, for them to clean up after themselves.
func (d *Daemon) stopOperations() {
	ctx, cancel := context.WithTimeout(context.Background(), operationShutdownLimit)
	defer cancel()
	if err := d.ops.Shutdown(ctx); err != nil {
		d.logger.Error("operations did not finish at shutdown", "error", err.Error())
	}
}

// freeTaps lists the user's taps that no VM uses, for the tap pool to
// adopt: the helper reports every tap the user owns, the VM service
// which of them its VMs hold.
func (d *Daemon) freeTaps(ctx context.Context) ([]string, error) {
	hctx, cancel := context.WithTimeout(ctx, adoptHelperTimeout)
	st, err := d.helper.Status(hctx)
	cancel()
	if err != nil {
		return nil, err
	}
	inUse, err := d.vms.TapsInUse(ctx)
	if err != nil {
		return nil, err
	}
	var free []string
	for _, tap := range st.Taps {
		if !inUse[tap.Name] {
			free = append(free, tap.Name)
		}
	}
	return free, nil
}

func (d *Daemon) tapPoolStatus() api.TapPoolStatus {
	if d.tapPool == nil {
		return api.TapPoolStatus{}
	}
	st := d.tapPool.Stats()
	return api.TapPoolStatus{Size: st.Size, Ready: st.Ready, Hits: st.Hits, Misses: st.Misses, LastError: st.LastError}
}

// workspaceTempDir is where the workspace service builds repositories
// and receives bundles: emptied at start, since the daemon holds its
// lock and nothing there outlives the request that made it.
func workspaceTempDir(layout paths.Layout, logger *slog.Logger) string {
	dir := filepath.Join(layout.DataDir, "workspace-tmp")
	if err := os.RemoveAll(dir); err != nil {
		logger.Warn("workspace temporary directory not emptied", "path", dir, "error", err.Error())
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		logger.Warn("workspace temporary directory not made", "path", dir, "error", err.Error())
	}
	return dir
}
