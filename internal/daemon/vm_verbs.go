package daemon

import (
	"context"
	"fmt"
	"strings"
	"time"

	"banger/internal/api"
	"banger/internal/disk"
	"banger/internal/errdefs"
	"banger/internal/model"
	"banger/internal/vmm"
)

const defaultStopTimeout = 30 * time.Second

// findVM resolves a user's reference and locks the VM; the caller must
// call the returned unlock.
func (d *Daemon) findVM(ctx context.Context, ref string) (model.VMRecord, func(), error) {
	vm, err := d.store.FindVM(ctx, ref)
	if err != nil {
		return vm, func() {}, err
	}
	unlock := d.lockVM(vm.ID)
	// Re-read under the lock: another operation may have changed it.
	if vm, err = d.store.GetVM(ctx, vm.ID); err != nil {
		unlock()
		return vm, func() {}, err
	}
	return vm, unlock, nil
}

func (d *Daemon) vmStart(ctx context.Context, p api.VMRef) (api.VMDetail, error) {
	vm, unlock, err := d.findVM(ctx, p.Name)
	if err != nil {
		return api.VMDetail{}, err
	}
	defer unlock()
	op := d.beginOperation(ctx, "vm.start", vmLogAttrs(vm)...)
	switch {
	case vm.State == model.VMStateRunning:
		return api.VMDetail{}, op.fail(fmt.Errorf("vm %s is running already: %w", vm.Name, errdefs.ErrConflict))
	case strings.HasPrefix(vm.Runtime.LastError, createInFlight) || strings.HasPrefix(vm.Runtime.LastError, createInterrupted) || strings.HasPrefix(vm.Runtime.LastError, createFailed):
		// Its disks may be half made.
		return api.VMDetail{}, op.fail(fmt.Errorf("vm %s was never created completely (%s); remove it: %w", vm.Name, vm.Runtime.LastError, errdefs.ErrConflict))
	}
	vm, err = d.bootVM(ctx, vm, noProgress{})
	if err != nil {
		d.recordError(ctx, vm, err)
		return api.VMDetail{}, op.fail(err)
	}
	d.touch(ctx, &vm)
	op.done()
	return d.vmDetail(ctx, vm)
}

// recordError keeps a failed start's reason on a VM that is not running.
func (d *Daemon) recordError(ctx context.Context, vm model.VMRecord, err error) {
	if cur, gerr := d.store.GetVM(context.WithoutCancel(ctx), vm.ID); gerr == nil {
		vm = cur
	}
	vm.State = model.VMStateError
	vm.Runtime.LastError = err.Error()
	vm.UpdatedAt = model.Now()
	d.store.UpdateVM(context.WithoutCancel(ctx), vm)
}

func (d *Daemon) vmStop(ctx context.Context, p api.VMStopParams) (api.VMDetail, error) {
	vm, unlock, err := d.findVM(ctx, p.Name)
	if err != nil {
		return api.VMDetail{}, err
	}
	defer unlock()
	op := d.beginOperation(ctx, "vm.stop", vmLogAttrs(vm)...)
	if err := d.stopVM(ctx, &vm, p.TimeoutSeconds, p.Force, op); err != nil {
		return api.VMDetail{}, op.fail(err)
	}
	op.done()
	return d.vmDetail(ctx, vm)
}

// stopVM asks the guest to power off, kills the VMM after the timeout
// (or at once with force), and releases the VM's tap and NAT. A VM that
// is not running is left as it is.
func (d *Daemon) stopVM(ctx context.Context, vm *model.VMRecord, timeoutSeconds int, force bool, op *operationLog) error {
	if vm.State != model.VMStateRunning {
		return nil
	}
	timeout := defaultStopTimeout
	if timeoutSeconds > 0 {
		timeout = time.Duration(timeoutSeconds) * time.Second
	}
	d.stopMonitor(vm.ID)
	h := d.handlesOf(*vm)
	driver, err := d.driver(vm.Runtime.VMM)
	if err != nil {
		return err
	}
	if h.VMM.PID != 0 && vmm.Alive(h.VMM) {
		stopped := false
		if !force {
			sctx, cancel := context.WithTimeout(ctx, timeout)
			err := driver.Stop(sctx, h.VMM)
			cancel()
			stopped = err == nil
			if !stopped {
				op.stage("graceful stop failed; killing", "error", err.Error(), "timeout_s", timeout.Seconds())
			}
		}
		if !stopped {
			if err := driver.Kill(h.VMM); err != nil {
				return err
			}
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := vmm.Wait(wctx, h.VMM)
			cancel()
			if err != nil {
				return fmt.Errorf("%s pid %d did not exit after SIGKILL: %w", driver.Name(), h.VMM.PID, err)
			}
		}
	}
	if err := d.release(ctx, vm, h); err != nil {
		return err
	}
	vm.State = model.VMStateStopped
	vm.Runtime.LastError = ""
	vm.UpdatedAt = model.Now()
	return d.store.UpdateVM(ctx, *vm)
}

func (d *Daemon) vmRestart(ctx context.Context, p api.VMStopParams) (api.VMDetail, error) {
	vm, unlock, err := d.findVM(ctx, p.Name)
	if err != nil {
		return api.VMDetail{}, err
	}
	defer unlock()
	op := d.beginOperation(ctx, "vm.restart", vmLogAttrs(vm)...)
	if err := d.stopVM(ctx, &vm, p.TimeoutSeconds, p.Force, op); err != nil {
		return api.VMDetail{}, op.fail(err)
	}
	op.stage("stopped")
	if vm, err = d.bootVM(ctx, vm, noProgress{}); err != nil {
		d.recordError(ctx, vm, err)
		return api.VMDetail{}, op.fail(err)
	}
	d.touch(ctx, &vm)
	op.done()
	return d.vmDetail(ctx, vm)
}

func (d *Daemon) vmRemove(ctx context.Context, p api.VMRemoveParams) (api.VMDetail, error) {
	vm, unlock, err := d.findVM(ctx, p.Name)
	if err != nil {
		return api.VMDetail{}, err
	}
	defer unlock()
	op := d.beginOperation(ctx, "vm.remove", vmLogAttrs(vm)...)
	if vm.State == model.VMStateRunning && !p.Force {
		return api.VMDetail{}, op.fail(fmt.Errorf("vm %s is running; stop it first, or remove it with --force: %w", vm.Name, errdefs.ErrConflict))
	}
	if running := d.ops.Running(kindVMCreate, vm.Name); len(running) > 0 {
		return api.VMDetail{}, op.fail(fmt.Errorf("vm %s is being created (%s); cancel that first: %w", vm.Name, running[0].ID, errdefs.ErrConflict))
	}
	det, _ := d.vmDetail(ctx, vm)
	// Whatever the state: release anything the row or handles still name.
	if err := d.teardown(ctx, vm, true); err != nil {
		return api.VMDetail{}, op.fail(err)
	}
	if err := d.deleteVMFiles(ctx, vm); err != nil {
		return api.VMDetail{}, op.fail(err)
	}
	if err := d.store.DeleteVM(ctx, vm.ID); err != nil {
		return api.VMDetail{}, op.fail(err)
	}
	d.vmLocks.Delete(vm.ID)
	op.done()
	return det, nil
}

func (d *Daemon) vmList(ctx context.Context, _ struct{}) ([]api.VMDetail, error) {
	vms, err := d.store.ListVMs(ctx)
	if err != nil {
		return nil, err
	}
	images, err := d.store.ListImages(ctx)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for _, img := range images {
		names[img.ID] = img.Name
	}
	out := make([]api.VMDetail, 0, len(vms))
	for _, vm := range vms {
		det := api.VMDetail{VMRecord: vm, ImageName: names[vm.ImageID]}
		if vm.State == model.VMStateRunning {
			if h, ok, _ := readHandles(vm.Runtime.VMDir); ok {
				det.PID = h.VMM.PID
			}
		}
		out = append(out, det)
	}
	return out, nil
}

func (d *Daemon) vmShow(ctx context.Context, p api.VMRef) (api.VMDetail, error) {
	vm, err := d.store.FindVM(ctx, p.Name)
	if err != nil {
		return api.VMDetail{}, err
	}
	det, err := d.vmDetail(ctx, vm)
	choice := d.vmmChoice()
	det.VMMChoice = &choice
	return det, err
}

func (d *Daemon) vmDetail(ctx context.Context, vm model.VMRecord) (api.VMDetail, error) {
	det := api.VMDetail{VMRecord: vm}
	if img, err := d.store.GetImage(ctx, vm.ImageID); err == nil {
		det.ImageName = img.Name
	}
	if vm.State == model.VMStateRunning {
		if h, ok, _ := readHandles(vm.Runtime.VMDir); ok {
			det.PID = h.VMM.PID
		}
	}
	return det, nil
}

// vmSet changes a VM: vCPUs, memory and the work disk while it is
// stopped (they are fixed while a VMM runs), NAT at any time.
func (d *Daemon) vmSet(ctx context.Context, p api.VMSetParams) (api.VMDetail, error) {
	vm, unlock, err := d.findVM(ctx, p.Name)
	if err != nil {
		return api.VMDetail{}, err
	}
	defer unlock()
	op := d.beginOperation(ctx, "vm.set", vmLogAttrs(vm)...)
	bad := func(format string, args ...any) (api.VMDetail, error) {
		return api.VMDetail{}, op.fail(errdefs.Mark(errdefs.ErrInvalidArgument, fmt.Errorf(format, args...)))
	}
	running := vm.State == model.VMStateRunning
	spec := vm.Spec
	if p.VCPUs != nil {
		if *p.VCPUs < 1 || *p.VCPUs > 32 {
			return bad("--vcpus %d is outside 1..32", *p.VCPUs)
		}
		spec.VCPUCount = *p.VCPUs
	}
	if p.Memory != nil {
		mib, err := parseMemory(*p.Memory)
		if err != nil {
			return bad("--memory %q: %v", *p.Memory, err)
		}
		spec.MemoryMiB = mib
	}
	var newDisk int64
	if p.Disk != nil {
		n, err := model.ParseSize(*p.Disk)
		if err != nil {
			return bad("--disk %q: %v", *p.Disk, err)
		}
		if n < vm.Spec.WorkDiskSizeBytes {
			return bad("--disk %s is smaller than the work disk (%s); work disks only grow", model.FormatSizeBytes(n), model.FormatSizeBytes(vm.Spec.WorkDiskSizeBytes))
		}
		if n > vm.Spec.WorkDiskSizeBytes {
			newDisk = n
			spec.WorkDiskSizeBytes = n
		}
	}
	if running && (spec.VCPUCount != vm.Spec.VCPUCount || spec.MemoryMiB != vm.Spec.MemoryMiB || newDisk != 0) {
		return api.VMDetail{}, op.fail(fmt.Errorf("vm %s is running: stop it to change its vCPUs, memory or work disk (NAT can change live): %w", vm.Name, errdefs.ErrConflict))
	}
	if newDisk != 0 {
		if err := disk.GrowWorkDisk(ctx, vm.Runtime.WorkDiskPath, newDisk); err != nil {
			return api.VMDetail{}, op.fail(fmt.Errorf("grow work disk: %w", err))
		}
		op.stage("work disk grown", "bytes", newDisk)
	}
	if p.NAT != nil && *p.NAT != vm.Spec.NATEnabled {
		spec.NATEnabled = *p.NAT
		if running {
			if err := d.setNATLive(ctx, vm, *p.NAT); err != nil {
				return api.VMDetail{}, op.fail(err)
			}
		}
	}
	vm.Spec = spec
	vm.UpdatedAt = model.Now()
	if err := d.store.UpdateVM(ctx, vm); err != nil {
		return api.VMDetail{}, op.fail(err)
	}
	op.done("vcpus", spec.VCPUCount, "memory_mib", spec.MemoryMiB, "work_disk_bytes", spec.WorkDiskSizeBytes, "nat", spec.NATEnabled)
	return d.vmDetail(ctx, vm)
}

// setNATLive turns a running VM's NAT on or off and records it in its
// handles, so teardown knows.
func (d *Daemon) setNATLive(ctx context.Context, vm model.VMRecord, on bool) error {
	h := d.handlesOf(vm)
	if on {
		if _, err := d.helper.EnableNAT(ctx, vm.Runtime.TapDevice, vm.Runtime.GuestIP); err != nil {
			return fmt.Errorf("enable NAT: %w", err)
		}
		h.NATIP = vm.Runtime.GuestIP
	} else {
		if err := d.helper.DisableNAT(ctx, vm.Runtime.GuestIP); err != nil {
			return fmt.Errorf("disable NAT: %w", err)
		}
		h.NATIP = ""
	}
	return writeHandles(vm.Runtime.VMDir, h)
}

func (d *Daemon) vmTouch(ctx context.Context, p api.VMRef) (api.VMDetail, error) {
	vm, unlock, err := d.findVM(ctx, p.Name)
	if err != nil {
		return api.VMDetail{}, err
	}
	defer unlock()
	d.touch(ctx, &vm)
	return d.vmDetail(ctx, vm)
}

// touch records use of a VM, which the stale-VM sweeper goes by.
func (d *Daemon) touch(ctx context.Context, vm *model.VMRecord) {
	vm.LastTouchedAt = model.Now()
	if err := d.store.UpdateVM(ctx, *vm); err != nil {
		d.logger.Warn("touch vm", append(vmLogAttrs(*vm), "error", err.Error())...)
	}
}

// vmSSHInfo says how to reach a running VM's SSH server, and touches it.
func (d *Daemon) vmSSHInfo(ctx context.Context, p api.VMRef) (api.VMSSHInfo, error) {
	vm, unlock, err := d.findVM(ctx, p.Name)
	if err != nil {
		return api.VMSSHInfo{}, err
	}
	defer unlock()
	if vm.State != model.VMStateRunning {
		return api.VMSSHInfo{}, fmt.Errorf("vm %s is %s; start it with 'banger vm start %s': %w", vm.Name, vm.State, vm.Name, errdefs.ErrConflict)
	}
	d.touch(ctx, &vm)
	return api.VMSSHInfo{
		Host: vm.Runtime.GuestIP, Port: 22, User: "root",
		IdentityFile:   d.cfg.SSHKeyPath,
		KnownHostsFile: d.knownHosts.path,
		HostKeyAlias:   hostKeyAlias(vm.ID),
	}, nil
}
