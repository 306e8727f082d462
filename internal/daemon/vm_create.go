package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"banger/internal/api"
	"banger/internal/disk"
	"banger/internal/errdefs"
	"banger/internal/guestapi"
	"banger/internal/model"
	"banger/internal/operation"
	"banger/internal/sshkey"
)

const (
	kindVMCreate = "vm.create"

	stageAllocate = "allocate"
	stageOverlay  = "system overlay"
	stageWorkDisk = "work disk"
	stageTap      = "tap"
	stageBoot     = "boot"
	stageWaitSSH  = "wait for ssh"
	// LastError prefixes that mark a VM whose create did not finish.
	createInFlight    = "create in progress"
	createInterrupted = "its create was interrupted"
	createFailed      = "create failed"

	// cleanupLimit bounds the clean-up of a failed create or start, which
	// runs even when the request that began it was cancelled.
	cleanupLimit = 2 * time.Minute
)

var vmCreateStages = []string{stageValidate, stageAllocate, stageOverlay, stageWorkDisk, stageTap, stageBoot, stageWaitSSH}

// createRequest is a create after defaults and validation.
type createRequest struct {
	name      string
	image     model.Image
	spec      model.VMSpec
	noStart   bool
	driver    string
	generated bool // the name was made up
}

// vmCreateBegin checks a create and starts it as an operation under this
// request's op id. Mistakes in the request are reported at once.
func (d *Daemon) vmCreateBegin(ctx context.Context, p api.VMCreateParams) (model.Operation, error) {
	req, err := d.resolveCreate(ctx, p)
	if err != nil {
		return model.Operation{}, err
	}
	return d.ops.Begin(ctx, kindVMCreate, req.name, vmCreateStages, func(ctx context.Context, r *operation.Reporter) (any, error) {
		return d.createVM(ctx, r, req)
	})
}

// resolveCreate applies the defaults ([vm_defaults], then banger's) and
// checks everything that can be checked before anything is made.
func (d *Daemon) resolveCreate(ctx context.Context, p api.VMCreateParams) (createRequest, error) {
	bad := func(format string, args ...any) (createRequest, error) {
		return createRequest{}, errdefs.Mark(errdefs.ErrInvalidArgument, fmt.Errorf(format, args...))
	}
	def := d.cfg.VMDefaults
	req := createRequest{name: p.Name, noStart: p.NoStart}
	req.spec = model.VMSpec{
		VCPUCount:             firstNonZero(p.VCPUs, def.VCPUCount, model.DefaultVCPUCount),
		MemoryMiB:             firstNonZero(0, def.MemoryMiB, model.DefaultMemoryMiB),
		SystemOverlaySizeByte: firstNonZero64(def.SystemOverlaySizeByte, model.DefaultSystemOverlaySize),
		WorkDiskSizeBytes:     firstNonZero64(def.WorkDiskSizeBytes, model.DefaultWorkDiskSize),
		NATEnabled:            def.NATEnabled,
	}
	if p.NAT != nil {
		req.spec.NATEnabled = *p.NAT
	}
	if p.VCPUs < 0 || req.spec.VCPUCount < 1 || req.spec.VCPUCount > 32 {
		return bad("--vcpus %d is outside 1..32", p.VCPUs)
	}
	if p.Memory != "" {
		mib, err := parseMemory(p.Memory)
		if err != nil {
			return bad("--memory %q: %v", p.Memory, err)
		}
		req.spec.MemoryMiB = mib
	}
	for flag, f := range map[string]struct {
		raw string
		dst *int64
	}{"--disk": {p.Disk, &req.spec.WorkDiskSizeBytes}, "--overlay-size": {p.OverlaySize, &req.spec.SystemOverlaySizeByte}} {
		if f.raw == "" {
			continue
		}
		n, err := model.ParseSize(f.raw)
		if err != nil {
			return bad("%s %q: %v", flag, f.raw, err)
		}
		*f.dst = n
	}
	if req.spec.WorkDiskSizeBytes < 64<<20 {
		return bad("--disk %s is too small for a work disk (at least 64M)", model.FormatSizeBytes(req.spec.WorkDiskSizeBytes))
	}

	var err error
	if req.driver, err = d.pickDriver(p.VMM); err != nil {
		return createRequest{}, err
	}
	if err := d.driverInstalled(req.driver); err != nil {
		return createRequest{}, err
	}

	imageRef := p.Image
	if imageRef == "" {
		imageRef = d.cfg.DefaultImageName
	}
	req.image, err = d.store.FindImage(ctx, imageRef)
	if errors.Is(err, errdefs.ErrNotFound) {
		if p.Image == "" {
			return createRequest{}, fmt.Errorf("the default image %q does not exist yet; build it with 'banger image build' (a few minutes): %w", imageRef, errdefs.ErrNotFound)
		}
		return createRequest{}, fmt.Errorf("image %q does not exist; see 'banger image ls', or build it with 'banger image build --name %s': %w", imageRef, imageRef, errdefs.ErrNotFound)
	}
	if err != nil {
		return createRequest{}, err
	}
	for what, path := range map[string]string{"kernel": req.image.KernelPath, "root file system": req.image.RootfsPath, "initrd": req.image.InitrdPath} {
		if path == "" {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			return createRequest{}, fmt.Errorf("image %q: its %s %s is missing (%v); remove the image and build or register it again: %w",
				req.image.Name, what, path, unwrapPathError(err), errdefs.ErrNotFound)
		}
	}
	if fi, err := os.Stat(req.image.RootfsPath); err == nil && req.spec.SystemOverlaySizeByte < fi.Size() {
		return bad("--overlay-size %s is smaller than image %q's root file system (%s)",
			model.FormatSizeBytes(req.spec.SystemOverlaySizeByte), req.image.Name, model.FormatSizeBytes(fi.Size()))
	}

	if req.name == "" {
		taken, err := d.vmNames(ctx)
		if err != nil {
			return createRequest{}, err
		}
		if req.name, err = generateName(taken); err != nil {
			return createRequest{}, err
		}
		req.generated = true
	}
	if err := model.ValidateName("vm", req.name); err != nil {
		return createRequest{}, err
	}
	if vm, err := d.store.FindVM(ctx, req.name); err == nil && vm.Name == req.name {
		return createRequest{}, fmt.Errorf("vm %q exists already: %w", req.name, errdefs.ErrConflict)
	}
	if running := d.ops.Running(kindVMCreate, req.name); len(running) > 0 {
		return createRequest{}, fmt.Errorf("vm %q is being created already (%s): %w", req.name, running[0].ID, errdefs.ErrConflict)
	}
	return req, nil
}

// parseMemory reads a memory size as ParseSize does (a bare number is
// MiB) and returns whole MiB.
func parseMemory(raw string) (int, error) {
	n, err := model.ParseSize(raw)
	if err != nil {
		return 0, err
	}
	if n%(1<<20) != 0 {
		return 0, errors.New("memory must be a whole number of MiB")
	}
	mib := int(n >> 20)
	if mib < 128 {
		return 0, errors.New("at least 128M: a Debian guest with systemd needs that")
	}
	return mib, nil
}

func firstNonZero(vals ...int) int {
	for _, v := range vals {
		if v != 0 {
			return v
		}
	}
	return 0
}

func firstNonZero64(vals ...int64) int64 {
	for _, v := range vals {
		if v != 0 {
			return v
		}
	}
	return 0
}

func (d *Daemon) vmNames(ctx context.Context) (map[string]bool, error) {
	vms, err := d.store.ListVMs(ctx)
	if err != nil {
		return nil, err
	}
	names := make(map[string]bool, len(vms))
	for _, vm := range vms {
		names[vm.Name] = true
	}
	return names, nil
}

// createVM does a create's work. From the allocate stage on, the VM has a
// row recording everything made for it, written before each thing is
// made; a failure or cancellation tears it all down and deletes the row,
// or, when the teardown itself fails, keeps it in the error state with
// the reason, so that nothing is left that banger does not know of.
func (d *Daemon) createVM(ctx context.Context, r *operation.Reporter, req createRequest) (res api.VMDetail, err error) {
	op := d.beginOperation(ctx, kindVMCreate, "vm_name", req.name, "image_name", req.image.Name, "vmm", req.driver)
	rep := stageLog{Reporter: r, op: op}
	rep.Stage(stageValidate)
	key, err := sshkey.Ensure(d.cfg.SSHKeyPath, "bangerd")
	if err != nil {
		return res, op.fail(fmt.Errorf("daemon ssh key: %w", err))
	}

	rep.Stage(stageAllocate)
	vm, err := d.allocateVM(ctx, req, r.ID())
	if err != nil {
		return res, op.fail(err)
	}
	op.attrs = append(op.attrs, vmLogAttrs(vm)...)
	unlock := d.lockVM(vm.ID)
	defer unlock()
	defer func() {
		if err != nil {
			d.abandonCreate(ctx, vm, err)
		}
	}()

	rep.Stage(stageOverlay)
	persistOverlay, err := d.makeOverlay(ctx, vm, req.image)
	if err != nil {
		return res, op.fail(err)
	}

	rep.Stage(stageWorkDisk)
	warnings, err := d.makeWorkDisk(ctx, vm, req.image, key)
	if err != nil {
		return res, op.fail(err)
	}
	for _, w := range warnings {
		rep.Detail("warning: "+w, -1)
		op.stage("work disk warning", "warning", w)
	}

	// The overlay's flush is started only once the work disk is made and,
	// for a VM that boots, its VMM runs: the fsyncs before those points
	// (mkfs's own, QEMU's start) would otherwise wait behind it.
	if req.noStart {
		vm.Runtime.LastError = ""
		vm.UpdatedAt = model.Now()
		if err := d.store.UpdateVM(ctx, vm); err != nil {
			return res, op.fail(err)
		}
		go persistOverlay()
		op.done()
		return d.vmDetail(ctx, vm)
	}
	if vm, err = d.bootVM(ctx, vm, rep, persistOverlay); err != nil {
		return res, op.fail(err)
	}
	op.done()
	return d.vmDetail(ctx, vm)
}

// allocateVM picks the VM's identity — id, address, MAC, vsock CID,
// paths — and records it, with "create in progress" in LastError so a
// daemon that dies mid-create leaves a row its successor can clean up.
func (d *Daemon) allocateVM(ctx context.Context, req createRequest, opID string) (model.VMRecord, error) {
	strategy := d.overlayStrategyNow(ctx)
	d.allocMu.Lock()
	defer d.allocMu.Unlock()
	vms, err := d.store.ListVMs(ctx)
	if err != nil {
		return model.VMRecord{}, err
	}
	usedIPs := map[string]bool{}
	usedCIDs := map[uint32]bool{}
	for _, vm := range vms {
		usedIPs[vm.Runtime.GuestIP] = true
		usedCIDs[vm.Runtime.VSockCID] = true
	}
	bridge, err := bridgePrefix(d.cfg)
	if err != nil {
		return model.VMRecord{}, err
	}
	ip, err := allocateIP(bridge, usedIPs)
	if err != nil {
		return model.VMRecord{}, err
	}
	id, err := model.NewID()
	if err != nil {
		return model.VMRecord{}, err
	}
	dir := filepath.Join(d.layout.VMsDir, id)
	now := model.Now()
	vm := model.VMRecord{
		ID: id, Name: req.name, ImageID: req.image.ID, State: model.VMStateCreated,
		CreatedAt: now, UpdatedAt: now, LastTouchedAt: now,
		Spec: req.spec,
		Runtime: model.VMRuntime{
			GuestIP:         ip.String(),
			MAC:             macFor(ip),
			VSockCID:        allocateCID(usedCIDs),
			DNSName:         req.name + ".vm",
			VMDir:           dir,
			VMM:             req.driver,
			OverlayStrategy: string(strategy),
			SystemOverlay:   filepath.Join(dir, overlayFile(strategy)),
			WorkDiskPath:    filepath.Join(dir, "work.ext4"),
			LogPath:         filepath.Join(dir, "console.log"),
			// Sockets go in the runtime dir: a socket path must fit in
			// 107 bytes, which a home directory's data dir may not.
			APISockPath: filepath.Join(d.layout.RuntimeDir, "vm", id[:16]+".ctl"),
			VSockPath:   filepath.Join(d.layout.RuntimeDir, "vm", id[:16]+".vsock"),
			MetricsPath: filepath.Join(dir, "metrics.json"),
			LastError:   createInFlight + " (" + opID + ")",
		},
	}
	if err := d.store.CreateVM(ctx, vm); err != nil {
		return model.VMRecord{}, err
	}
	for _, p := range []string{dir, filepath.Dir(vm.Runtime.APISockPath)} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			d.store.DeleteVM(context.WithoutCancel(ctx), vm.ID)
			return model.VMRecord{}, fmt.Errorf("create %s: %w", p, err)
		}
	}
	return vm, nil
}

// abandonCreate undoes a create that failed or was cancelled, under a
// context of its own so a cancellation does not cut the clean-up short.
func (d *Daemon) abandonCreate(ctx context.Context, vm model.VMRecord, cause error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupLimit)
	defer cancel()
	op := d.beginOperation(ctx, "vm.create.cleanup", vmLogAttrs(vm)...)
	if cur, err := d.store.GetVM(ctx, vm.ID); err == nil {
		vm = cur
	}
	err := d.teardown(ctx, vm, true)
	if err == nil {
		err = d.deleteVMFiles(ctx, vm)
	}
	if err == nil {
		err = d.store.DeleteVM(ctx, vm.ID)
	}
	if err != nil {
		// Keep the record on purpose: it is how banger finds what is left.
		vm.State = model.VMStateError
		vm.Runtime.LastError = fmt.Sprintf("%s: %v; clean-up failed too: %v; remove it with 'banger vm rm %s'", createFailed, cause, err, vm.Name)
		vm.UpdatedAt = model.Now()
		d.store.UpdateVM(ctx, vm)
		op.fail(err)
		return
	}
	op.done("cause", cause.Error())
}

// deleteVMFiles removes the VM's directory and unpins its host key.
func (d *Daemon) deleteVMFiles(ctx context.Context, vm model.VMRecord) error {
	if err := d.knownHosts.Remove(vm.ID); err != nil {
		return fmt.Errorf("unpin host key: %w", err)
	}
	for _, sock := range []string{vm.Runtime.APISockPath, vm.Runtime.VSockPath} {
		if sock != "" && strings.HasPrefix(sock, d.layout.RuntimeDir+string(filepath.Separator)) {
			os.Remove(sock)
		}
	}
	if vm.Runtime.VMDir == "" || !strings.HasPrefix(vm.Runtime.VMDir, d.layout.VMsDir+string(filepath.Separator)) {
		return nil // never remove anything outside banger's VMs directory
	}
	if err := os.RemoveAll(vm.Runtime.VMDir); err != nil {
		return fmt.Errorf("remove %s: %w", vm.Runtime.VMDir, err)
	}
	return nil
}

// overlayFile names the system overlay in the VM's directory: the root
// file system itself for a clone, the snapshot's copy-on-write store for
// dm-snapshot.
func overlayFile(s disk.OverlayStrategy) string {
	if s == disk.OverlayDMSnapshot {
		return "system.cow"
	}
	return "system.ext4"
}

// makeOverlay clones the image's root file system as the VM's system
// overlay with the host's strategy, then grows it to the overlay size
// without writing data. Flushing the copy to disk (on the order of a
// second for a sparse copy of a Debian image) is left to the returned
// function, which the caller runs in the background once the work disk
// is made, while the guest boots: the guest's first flush would persist
// it anyway, and nothing needs it on disk before. (Run at once, it made
// the work disk's mkfs wait ~0.6 s in fsync behind it.)
func (d *Daemon) makeOverlay(ctx context.Context, vm model.VMRecord, img model.Image) (persist func(), err error) {
	strategy := disk.OverlayStrategy(vm.Runtime.OverlayStrategy)
	if strategy == disk.OverlayDMSnapshot {
		// The snapshot itself is built by the helper at each start; here
		// its copy-on-write store is made, sparse, as big as the overlay
		// may grow.
		if err := disk.CreateSparse(vm.Runtime.SystemOverlay, vm.Spec.SystemOverlaySizeByte); err != nil {
			return nil, fmt.Errorf("system overlay (%s): %w", strategy, err)
		}
		return func() {}, nil
	}
	sync, err := disk.CloneFileDeferSync(ctx, img.RootfsPath, vm.Runtime.SystemOverlay, strategy)
	if err != nil {
		return nil, fmt.Errorf("system overlay (%s): %w", strategy, err)
	}
	if err := disk.Grow(ctx, vm.Runtime.SystemOverlay, vm.Spec.SystemOverlaySizeByte); err != nil {
		return nil, fmt.Errorf("grow system overlay to %s: %w", model.FormatSizeBytes(vm.Spec.SystemOverlaySizeByte), err)
	}
	return func() {
		if err := sync(); err != nil && !errors.Is(err, os.ErrNotExist) {
			d.logger.Warn("system overlay not flushed", append(vmLogAttrs(vm), "error", err.Error())...)
		}
	}, nil
}

// makeWorkDisk builds the work disk from the image's work seed, the
// config's file sync entries, the daemon's public key, and a host key
// made for this VM alone — pinned in banger's known_hosts before the VM
// ever answers, so the first connection is verified too.
func (d *Daemon) makeWorkDisk(ctx context.Context, vm model.VMRecord, img model.Image, key sshkey.Key) ([]string, error) {
	host, err := sshkey.Generate("root@" + vm.Name)
	if err != nil {
		return nil, err
	}
	if err := d.knownHosts.Set(vm.ID, host.Public()); err != nil {
		return nil, fmt.Errorf("pin host key: %w", err)
	}
	res, err := disk.BuildWorkDisk(ctx, disk.WorkDiskSpec{
		Path:      vm.Runtime.WorkDiskPath,
		SizeBytes: vm.Spec.WorkDiskSizeBytes,
		SeedDir:   img.WorkSeedPath,
		Files: []disk.File{
			{GuestPath: guestapi.AuthorizedKeysPath, Data: key.AuthorizedKey("bangerd"), Mode: 0o600},
			{GuestPath: guestapi.HostKeyPath, Data: host.PrivatePEM, Mode: 0o600},
			{GuestPath: guestapi.HostKeyPath + ".pub", Data: host.AuthorizedKey("root@" + vm.Name), Mode: 0o644},
		},
		Sync: d.cfg.FileSync,
		Home: d.cfg.HostHomeDir,
	})
	if err != nil {
		return nil, fmt.Errorf("work disk: %w", err)
	}
	return res.Warnings, nil
}
