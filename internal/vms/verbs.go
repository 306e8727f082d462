package vms

import (
	"context"
	"fmt"
	"strings"
	"time"

	"banger/internal/api"
	"banger/internal/disk"
	"banger/internal/errdefs"
	"banger/internal/model"
	"banger/internal/oplog"
)

// Start boots a VM that is not running and waits for its SSH server.
func (s *Service) Start(ctx context.Context, ref string) (api.VMDetail, error) {
	vm, unlock, err := s.findVM(ctx, ref)
	if err != nil {
		return api.VMDetail{}, err
	}
	defer unlock()
	op := oplog.Begin(ctx, s.logger, "vm.start", oplog.VMAttrs(vm)...)
	if err := startable(vm); err != nil {
		return api.VMDetail{}, op.Fail(err)
	}
	return s.startLocked(ctx, op, vm, noProgress{})
}

// startable refuses a VM that runs already or whose disks may be half
// made.
func startable(vm model.VMRecord) error {
	switch {
	case vm.State == model.VMStateRunning:
		return fmt.Errorf("vm %s is running already: %w", vm.Name, errdefs.ErrConflict)
	case halfMade(vm):
		return fmt.Errorf("vm %s was never created completely (%s); remove it: %w", vm.Name, vm.Runtime.LastError, errdefs.ErrConflict)
	}
	return nil
}

// halfMade reports a VM whose create did not finish.
func halfMade(vm model.VMRecord) bool {
	for _, p := range []string{createInFlight, createInterrupted, createFailed} {
		if strings.HasPrefix(vm.Runtime.LastError, p) {
			return true
		}
	}
	return false
}

// recordError keeps a failed start's reason on a VM that is not
// running. When even that cannot be written, the log says so.
func (s *Service) recordError(ctx context.Context, op *oplog.Log, vm model.VMRecord, cause error) {
	ctx = context.WithoutCancel(ctx)
	if cur, err := s.store.GetVM(ctx, vm.ID); err == nil {
		vm = cur
	}
	if err := s.setState(ctx, &vm, model.VMStateError, cause.Error()); err != nil {
		op.Warn("vm error state not recorded", "error", err.Error())
	}
}

// Stop stops a VM: the guest is asked to power off, and the VMM killed
// after the timeout (or at once with Force).
func (s *Service) Stop(ctx context.Context, p api.VMStopParams) (api.VMDetail, error) {
	vm, unlock, err := s.findVM(ctx, p.Name)
	if err != nil {
		return api.VMDetail{}, err
	}
	defer unlock()
	op := oplog.Begin(ctx, s.logger, "vm.stop", oplog.VMAttrs(vm)...)
	if err := s.stopVM(ctx, &vm, time.Duration(p.TimeoutSeconds)*time.Second, p.Force, op); err != nil {
		return api.VMDetail{}, op.Fail(err)
	}
	op.Done()
	return s.detail(ctx, vm), nil
}

// Restart stops a VM (if it runs) and boots it again.
func (s *Service) Restart(ctx context.Context, p api.VMStopParams) (api.VMDetail, error) {
	vm, unlock, err := s.findVM(ctx, p.Name)
	if err != nil {
		return api.VMDetail{}, err
	}
	defer unlock()
	op := oplog.Begin(ctx, s.logger, "vm.restart", oplog.VMAttrs(vm)...)
	if halfMade(vm) {
		return api.VMDetail{}, op.Fail(startable(vm))
	}
	if err := s.stopVM(ctx, &vm, time.Duration(p.TimeoutSeconds)*time.Second, p.Force, op); err != nil {
		return api.VMDetail{}, op.Fail(err)
	}
	op.Stage("stopped")
	if vm, err = s.boot(ctx, vm, noProgress{}); err != nil {
		s.recordError(ctx, op, vm, err)
		return api.VMDetail{}, op.Fail(err)
	}
	s.touch(ctx, &vm)
	op.Done()
	return s.detail(ctx, vm), nil
}

// Remove deletes a VM — a running one only with Force — and everything
// it holds: its VMM, tap, NAT, dm-snapshot, disks and pinned key.
func (s *Service) Remove(ctx context.Context, p api.VMRemoveParams) (api.VMDetail, error) {
	vm, unlock, err := s.findVM(ctx, p.Name)
	if err != nil {
		return api.VMDetail{}, err
	}
	defer unlock()
	op := oplog.Begin(ctx, s.logger, "vm.remove", oplog.VMAttrs(vm)...)
	if vm.State == model.VMStateRunning && !p.Force {
		return api.VMDetail{}, op.Fail(fmt.Errorf("vm %s is running; stop it first, or remove it with --force: %w", vm.Name, errdefs.ErrConflict))
	}
	if running := s.ops.Running(KindCreate, vm.Name); len(running) > 0 {
		return api.VMDetail{}, op.Fail(fmt.Errorf("vm %s is being created (%s); cancel that first: %w", vm.Name, running[0].ID, errdefs.ErrConflict))
	}
	det := s.detail(ctx, vm)
	// Whatever the state: release anything the row or handles still name.
	// The steps are debug stages, the crash tests' failpoints.
	op.DebugStage("teardown")
	if err := s.teardown(ctx, vm, true); err != nil {
		if vm.State == model.VMStateRunning {
			// Its VMM may be gone already: the VM must not stay recorded
			// running, unwatched. rm again finishes it.
			s.recordError(ctx, op, vm, fmt.Errorf("rm did not finish: %w; run 'banger vm rm --force %s' again once that is fixed", err, vm.Name))
		}
		return api.VMDetail{}, op.Fail(err)
	}
	op.DebugStage("files")
	if err := s.deleteVMFiles(vm); err != nil {
		return api.VMDetail{}, op.Fail(err)
	}
	op.DebugStage("record")
	if err := s.store.DeleteVM(ctx, vm.ID); err != nil {
		return api.VMDetail{}, op.Fail(err)
	}
	s.vmLocks.Delete(vm.ID)
	s.removed(ctx, vm)
	op.Done()
	return det, nil
}

// removed tells the hooks a VM that ran is gone.
func (s *Service) removed(ctx context.Context, vm model.VMRecord) {
	if vm.State == model.VMStateRunning && s.hooks.Stopped != nil {
		s.hooks.Stopped(ctx, vm)
	}
}

// List returns every VM, oldest first.
func (s *Service) List(ctx context.Context) ([]api.VMDetail, error) {
	vms, err := s.store.ListVMs(ctx)
	if err != nil {
		return nil, err
	}
	images, err := s.store.ListImages(ctx)
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(images))
	for _, img := range images {
		names[img.ID] = img.Name
	}
	out := make([]api.VMDetail, len(vms))
	for i, vm := range vms {
		out[i] = api.VMDetail{VMRecord: vm, ImageName: names[vm.ImageID], PID: vmmPID(vm)}
	}
	return out, nil
}

// Show returns one VM, and what a VM created now would get.
func (s *Service) Show(ctx context.Context, ref string) (api.VMDetail, error) {
	vm, err := s.store.FindVM(ctx, ref)
	if err != nil {
		return api.VMDetail{}, err
	}
	det := s.detail(ctx, vm)
	choice := s.Choice()
	det.VMMChoice = &choice
	return det, nil
}

// detail is a VM as the verbs report it.
func (s *Service) detail(ctx context.Context, vm model.VMRecord) api.VMDetail {
	det := api.VMDetail{VMRecord: vm, PID: vmmPID(vm)}
	if img, err := s.store.GetImage(ctx, vm.ImageID); err == nil {
		det.ImageName = img.Name
	}
	return det
}

// vmmPID is a running VM's VMM pid, 0 when unknown.
func vmmPID(vm model.VMRecord) int {
	if vm.State != model.VMStateRunning {
		return 0
	}
	h, ok, _ := readHandles(vm.Runtime.VMDir)
	if !ok {
		return 0
	}
	return h.VMM.PID
}

// Set changes a VM: vCPUs, memory and the work disk while it is
// stopped (they are fixed while a VMM runs), NAT at any time.
func (s *Service) Set(ctx context.Context, req model.VMSetRequest) (api.VMDetail, error) {
	vm, unlock, err := s.findVM(ctx, req.IDOrName)
	if err != nil {
		return api.VMDetail{}, err
	}
	defer unlock()
	op := oplog.Begin(ctx, s.logger, "vm.set", oplog.VMAttrs(vm)...)
	spec, grow, err := setSpec(vm, req)
	if err != nil {
		return api.VMDetail{}, op.Fail(err)
	}
	// Each step is a debug stage, a failpoint of the crash tests.
	if grow != 0 {
		op.DebugStage("grow")
		if err := disk.GrowWorkDisk(ctx, vm.Runtime.WorkDiskPath, grow); err != nil {
			return api.VMDetail{}, op.Fail(fmt.Errorf("grow work disk: %w", err))
		}
		op.Stage("work disk grown", "bytes", grow)
	}
	if spec.NATEnabled != vm.Spec.NATEnabled && vm.State == model.VMStateRunning {
		op.DebugStage("nat")
		if err := s.setNATLive(ctx, vm, spec.NATEnabled); err != nil {
			return api.VMDetail{}, op.Fail(err)
		}
	}
	vm.Spec = spec
	op.DebugStage("record")
	if err := s.save(ctx, &vm); err != nil {
		return api.VMDetail{}, op.Fail(err)
	}
	op.Done("vcpus", spec.VCPUCount, "memory_mib", spec.MemoryMiB, "work_disk_bytes", spec.WorkDiskSizeBytes, "nat", spec.NATEnabled)
	return s.detail(ctx, vm), nil
}

// setSpec is vm's spec with req applied and checked, and the size the
// work disk must grow to (0: it stays).
func setSpec(vm model.VMRecord, req model.VMSetRequest) (model.VMSpec, int64, error) {
	spec := vm.Spec
	if req.VCPUCount != nil {
		spec.VCPUCount = *req.VCPUCount
	}
	if req.MemoryMiB != nil {
		spec.MemoryMiB = *req.MemoryMiB
	}
	if req.WorkDiskSizeBytes != nil {
		spec.WorkDiskSizeBytes = *req.WorkDiskSizeBytes
	}
	if req.NATEnabled != nil {
		spec.NATEnabled = *req.NATEnabled
	}
	if err := checkSpec(spec); err != nil {
		return spec, 0, err
	}
	if spec.WorkDiskSizeBytes < vm.Spec.WorkDiskSizeBytes {
		return spec, 0, invalid("--disk %s is smaller than the work disk (%s); work disks only grow",
			model.FormatSizeBytes(spec.WorkDiskSizeBytes), model.FormatSizeBytes(vm.Spec.WorkDiskSizeBytes))
	}
	var grow int64
	if spec.WorkDiskSizeBytes > vm.Spec.WorkDiskSizeBytes {
		grow = spec.WorkDiskSizeBytes
	}
	if vm.State == model.VMStateRunning && (spec.VCPUCount != vm.Spec.VCPUCount || spec.MemoryMiB != vm.Spec.MemoryMiB || grow != 0) {
		return spec, 0, fmt.Errorf("vm %s is running: stop it to change its vCPUs, memory or work disk (NAT can change live): %w", vm.Name, errdefs.ErrConflict)
	}
	return spec, grow, nil
}

// setNATLive turns a running VM's NAT on or off and records it in its
// handles, so teardown knows.
func (s *Service) setNATLive(ctx context.Context, vm model.VMRecord, on bool) error {
	h := s.handlesOf(vm)
	if on {
		if _, err := s.helper.EnableNAT(ctx, vm.Runtime.TapDevice, vm.Runtime.GuestIP); err != nil {
			return fmt.Errorf("enable NAT: %w", err)
		}
		h.NATIP = vm.Runtime.GuestIP
	} else {
		if err := s.helper.DisableNAT(ctx, vm.Runtime.GuestIP); err != nil {
			return fmt.Errorf("disable NAT: %w", err)
		}
		h.NATIP = ""
	}
	return writeHandles(vm.Runtime.VMDir, h)
}

// Touch records use of a VM.
func (s *Service) Touch(ctx context.Context, ref string) (api.VMDetail, error) {
	vm, unlock, err := s.findVM(ctx, ref)
	if err != nil {
		return api.VMDetail{}, err
	}
	defer unlock()
	s.touch(ctx, &vm)
	return s.detail(ctx, vm), nil
}

// touch records use of a VM (LastTouchedAt), which idle auto-stop will
// go by.
func (s *Service) touch(ctx context.Context, vm *model.VMRecord) {
	vm.LastTouchedAt = s.now()
	if err := s.save(ctx, vm); err != nil {
		s.logger.WarnContext(ctx, "touch vm", append(oplog.VMAttrs(*vm), "error", err.Error())...)
	}
}
