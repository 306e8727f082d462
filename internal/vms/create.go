package vms

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"banger/internal/api"
	"banger/internal/disk"
	"banger/internal/errdefs"
	"banger/internal/model"
	"banger/internal/operation"
	"banger/internal/oplog"
	"banger/internal/sshkey"
)

const (
	// KindCreate is the operation kind of a VM create.
	KindCreate = "vm.create"

	stageValidate  = "validate"
	stageAllocate  = "allocate"
	stageOverlay   = "system overlay"
	stageWorkspace = "workspace"
	stageWorkDisk  = "work disk"
	stageTap       = "tap"
	stageBoot      = "boot"
	stageWaitSSH   = "wait for ssh"
	// LastError prefixes that mark a VM whose create did not finish.
	createInFlight    = "create in progress"
	createInterrupted = "its create was interrupted"
	createFailed      = "create failed"

	// cleanupLimit bounds the clean-up of a failed create or start, which
	// runs even when the request that began it was cancelled.
	cleanupLimit = 2 * time.Minute
)

var createStages = []string{stageValidate, stageAllocate, stageOverlay, stageWorkDisk, stageTap, stageBoot, stageWaitSSH}

// CreateRequest is a create: the seed's request (zero values take
// [vm_defaults], then banger's defaults) and what banger adds to it.
type CreateRequest struct {
	model.VMCreateRequest
	// NAT, when set, is the VM's NAT whatever [vm_defaults] says;
	// VMCreateRequest.NATEnabled alone cannot say "off" over a default
	// of "on".
	NAT *bool
	// VMM is the driver: "", "auto" or a driver's name.
	VMM string
	// WorkTree, when set, is put on the work disk too: a workspace.
	WorkTree *WorkTree
}

// WorkTree is content a create puts on the work disk besides the seed
// and file sync: a workspace. Build makes it in dir, a directory in the
// VM's own that does not exist yet, once the VM has its name and its
// row, and says how many bytes it holds; its failure fails the create,
// which then removes everything, dir included.
type WorkTree struct {
	GuestPath string
	Build     func(ctx context.Context, vm model.VMRecord, dir string, rep Progress) (int64, error)
}

// Progress is what a create reports its steps' details through.
type Progress interface {
	Detail(msg string, frac float64)
}

// createPlan is a create after defaults and validation.
type createPlan struct {
	name     string
	image    model.Image
	spec     model.VMSpec
	noStart  bool
	driver   string
	workTree *WorkTree
}

// CreateBegin checks a create and starts it as an operation under the
// request's op id. Mistakes in the request are reported at once.
func (s *Service) CreateBegin(ctx context.Context, req CreateRequest) (model.Operation, error) {
	plan, err := s.planCreate(ctx, req)
	if err != nil {
		return model.Operation{}, err
	}
	return s.ops.Begin(ctx, KindCreate, plan.name, plan.stages(), func(ctx context.Context, r *operation.Reporter) (any, error) {
		return s.create(ctx, r, plan)
	})
}

// stages are the create's stages, a workspace's among them when it
// builds one.
func (p createPlan) stages() []string {
	if p.workTree == nil {
		return createStages
	}
	return slices.Insert(slices.Clone(createStages), slices.Index(createStages, stageWorkDisk), stageWorkspace)
}

// planCreate applies the defaults and checks, in a fixed order,
// everything that can be checked before anything is made: the sizes, the
// driver, the image, then the name.
func (s *Service) planCreate(ctx context.Context, req CreateRequest) (createPlan, error) {
	plan := createPlan{name: req.Name, noStart: req.NoStart, workTree: req.WorkTree}
	var err error
	if plan.spec, err = s.specFor(req); err != nil {
		return plan, err
	}
	if plan.driver, err = s.pickDriver(req.VMM); err != nil {
		return plan, err
	}
	if err := s.driverInstalled(plan.driver); err != nil {
		return plan, err
	}
	if plan.image, err = s.imageFor(ctx, req.ImageName); err != nil {
		return plan, err
	}
	if fi, err := os.Stat(plan.image.RootfsPath); err == nil && plan.spec.SystemOverlaySizeByte < fi.Size() {
		return plan, invalid("--overlay-size %s is smaller than image %q's root file system (%s)",
			model.FormatSizeBytes(plan.spec.SystemOverlaySizeByte), plan.image.Name, model.FormatSizeBytes(fi.Size()))
	}
	if plan.name, err = s.nameFor(ctx, req.Name); err != nil {
		return plan, err
	}
	return plan, nil
}

// specFor is the VM's spec: what the request sets, else [vm_defaults],
// else banger's defaults, each checked.
func (s *Service) specFor(req CreateRequest) (model.VMSpec, error) {
	def := s.cfg.VMDefaults
	spec := model.VMSpec{
		VCPUCount:             firstNonZero(req.VCPUCount, def.VCPUCount, model.DefaultVCPUCount),
		MemoryMiB:             firstNonZero(req.MemoryMiB, def.MemoryMiB, model.DefaultMemoryMiB),
		SystemOverlaySizeByte: firstNonZero(req.SystemOverlaySizeByte, def.SystemOverlaySizeByte, model.DefaultSystemOverlaySize),
		WorkDiskSizeBytes:     firstNonZero(req.WorkDiskSizeBytes, def.WorkDiskSizeBytes, model.DefaultWorkDiskSize),
		NATEnabled:            req.NATEnabled || def.NATEnabled,
	}
	if req.NAT != nil {
		spec.NATEnabled = *req.NAT
	}
	if err := checkSpec(spec); err != nil {
		return spec, err
	}
	if spec.SystemOverlaySizeByte > model.MaxDiskBytes {
		return spec, invalid("--overlay-size %s is more than %s", model.FormatSizeBytes(spec.SystemOverlaySizeByte), model.FormatSizeBytes(model.MaxDiskBytes))
	}
	return spec, nil
}

// checkSpec checks what create and set both allow, in a fixed order.
func checkSpec(spec model.VMSpec) error {
	if err := model.CheckVCPUCount(spec.VCPUCount); err != nil {
		return invalid("--vcpus %v", err)
	}
	if err := model.CheckMemoryMiB(spec.MemoryMiB); err != nil {
		return invalid("--memory %v", err)
	}
	switch {
	case spec.WorkDiskSizeBytes < model.MinWorkDiskSizeBytes:
		return invalid("--disk %s is too small for a work disk (at least %s)",
			model.FormatSizeBytes(spec.WorkDiskSizeBytes), model.FormatSizeBytes(model.MinWorkDiskSizeBytes))
	case spec.WorkDiskSizeBytes > model.MaxDiskBytes:
		return invalid("--disk %s is more than %s", model.FormatSizeBytes(spec.WorkDiskSizeBytes), model.FormatSizeBytes(model.MaxDiskBytes))
	}
	return nil
}

// imageFor finds the image a create names (the default image when it
// names none) and checks that its files are there.
func (s *Service) imageFor(ctx context.Context, ref string) (model.Image, error) {
	name := ref
	if name == "" {
		name = s.cfg.DefaultImageName
	}
	img, err := s.store.FindImage(ctx, name)
	switch {
	case errors.Is(err, errdefs.ErrNotFound) && ref == "":
		return img, fmt.Errorf("the default image %q does not exist yet; build it with 'banger image build' (a few minutes): %w", name, errdefs.ErrNotFound)
	case errors.Is(err, errdefs.ErrNotFound):
		return img, fmt.Errorf("image %q does not exist; see 'banger image ls', or build it with 'banger image build --name %s': %w", name, name, errdefs.ErrNotFound)
	case err != nil:
		return img, err
	}
	for _, f := range []struct{ what, path string }{{"kernel", img.KernelPath}, {"root file system", img.RootfsPath}, {"initrd", img.InitrdPath}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return img, fmt.Errorf("image %q: its %s %s is missing (%v); remove the image and build or register it again: %w",
				img.Name, f.what, f.path, errdefs.PathCause(err), errdefs.ErrNotFound)
		}
	}
	return img, nil
}

// nameFor checks the name a create asks for, or makes one up.
func (s *Service) nameFor(ctx context.Context, name string) (string, error) {
	if name == "" {
		taken, err := s.vmNames(ctx)
		if err != nil {
			return "", err
		}
		if name, err = generateName(taken); err != nil {
			return "", err
		}
	}
	if err := model.ValidateName("vm", name); err != nil {
		return "", err
	}
	if vm, err := s.store.FindVM(ctx, name); err == nil && vm.Name == name {
		return "", fmt.Errorf("vm %q exists already: %w", name, errdefs.ErrConflict)
	}
	if running := s.ops.Running(KindCreate, name); len(running) > 0 {
		return "", fmt.Errorf("vm %q is being created already (%s): %w", name, running[0].ID, errdefs.ErrConflict)
	}
	return name, nil
}

func (s *Service) vmNames(ctx context.Context) (map[string]bool, error) {
	vms, err := s.store.ListVMs(ctx)
	if err != nil {
		return nil, err
	}
	names := make(map[string]bool, len(vms))
	for _, vm := range vms {
		names[vm.Name] = true
	}
	return names, nil
}

// create does a create's work. From the allocate stage on, the VM has a
// row recording everything made for it, written before each thing is
// made; a failure or cancellation tears it all down and deletes the row,
// or, when the teardown itself fails, keeps it in the error state with
// the reason, so that nothing is left that banger does not know of.
func (s *Service) create(ctx context.Context, r *operation.Reporter, plan createPlan) (res api.VMDetail, err error) {
	op := oplog.Begin(ctx, s.logger, KindCreate, "vm_name", plan.name, "image_name", plan.image.Name, "vmm", plan.driver)
	rep := operation.Logged{Reporter: r, Log: op}
	rep.Stage(stageValidate)
	key, err := sshkey.Ensure(s.cfg.SSHKeyPath, "bangerd")
	if err != nil {
		return res, op.Fail(fmt.Errorf("daemon ssh key: %w", err))
	}

	rep.Stage(stageAllocate)
	vm, err := s.allocateVM(ctx, plan, r.ID())
	if err != nil {
		return res, op.Fail(err)
	}
	op.With(oplog.VMAttrs(vm)...)
	unlock := s.lockVM(vm.ID)
	defer unlock()
	defer func() {
		if err == nil {
			return
		}
		if cerr := s.abandonCreate(ctx, vm, err); cerr != nil {
			err = fmt.Errorf("%w (and cleaning up after it failed: %w; remove the VM with 'banger vm rm %s')", err, cerr, vm.Name)
		}
	}()

	rep.Stage(stageOverlay)
	persistOverlay, err := s.makeOverlay(ctx, vm, plan.image)
	if err != nil {
		return res, op.Fail(err)
	}

	var trees []disk.Tree
	if plan.workTree != nil {
		rep.Stage(stageWorkspace)
		dir := filepath.Join(vm.Runtime.VMDir, "workspace.new")
		n, err := plan.workTree.Build(ctx, vm, dir, rep)
		if err != nil {
			return res, op.Fail(fmt.Errorf("workspace: %w", err))
		}
		trees = append(trees, disk.Tree{GuestPath: plan.workTree.GuestPath, Dir: dir, Bytes: n})
	}

	rep.Stage(stageWorkDisk)
	warnings, err := s.makeWorkDisk(ctx, vm, plan.image, key, trees)
	if err != nil {
		return res, op.Fail(err)
	}
	for _, w := range warnings {
		rep.Detail("warning: "+w, -1)
		op.Stage("work disk warning", "warning", w)
	}

	// The overlay's flush is started only once the work disk is made and,
	// for a VM that boots, its VMM runs: the fsyncs before those points
	// (mkfs's own, QEMU's start) would otherwise wait behind it.
	if plan.noStart {
		if err := s.setState(ctx, &vm, model.VMStateCreated, ""); err != nil {
			return res, op.Fail(err)
		}
		go persistOverlay()
		op.Done()
		return s.detail(ctx, vm), nil
	}
	if vm, err = s.boot(ctx, vm, rep, persistOverlay); err != nil {
		return res, op.Fail(err)
	}
	// Its guest answered: the create is complete.
	if err := s.setState(ctx, &vm, model.VMStateRunning, ""); err != nil {
		return res, op.Fail(err)
	}
	op.Done()
	return s.detail(ctx, vm), nil
}

// abandonCreate undoes a create that failed or was cancelled, under a
// context of its own so a cancellation does not cut the clean-up short.
// What cannot be undone is kept in the error state, with the reason,
// for `vm rm` to finish, and the clean-up's failure is returned, for
// the create's error to carry.
func (s *Service) abandonCreate(ctx context.Context, vm model.VMRecord, cause error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupLimit)
	defer cancel()
	op := oplog.Begin(ctx, s.logger, "vm.create.cleanup", oplog.VMAttrs(vm)...)
	if cur, err := s.store.GetVM(ctx, vm.ID); err == nil {
		vm = cur
	}
	err := s.teardown(ctx, vm, true)
	if err == nil {
		err = s.deleteVMFiles(vm)
	}
	if err == nil {
		err = s.store.DeleteVM(ctx, vm.ID)
	}
	if err == nil {
		s.vmLocks.Delete(vm.ID)
		s.removed(ctx, vm)
		op.Done("cause", cause.Error())
		return nil
	}
	// Keep the record on purpose: it is how banger finds what is left.
	reason := fmt.Sprintf("%s: %v; clean-up failed too: %v; remove it with 'banger vm rm %s'", createFailed, cause, err, vm.Name)
	if serr := s.setState(ctx, &vm, model.VMStateError, reason); serr != nil {
		op.Warn("vm record not updated after a failed clean-up", "error", serr.Error())
		err = errors.Join(err, fmt.Errorf("recording the error state: %w", serr))
	}
	return op.Fail(err)
}

func firstNonZero[T int | int64](vals ...T) T {
	for _, v := range vals {
		if v != 0 {
			return v
		}
	}
	return 0
}

// invalid is an ErrInvalidArgument whose message says it all.
func invalid(format string, args ...any) error {
	return errdefs.Mark(errdefs.ErrInvalidArgument, fmt.Errorf(format, args...))
}
