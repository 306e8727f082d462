package vms

import (
	"context"
	"errors"
	"fmt"
	"time"

	"banger/internal/errdefs"
	"banger/internal/model"
	"banger/internal/oplog"
	"banger/internal/vmm"
)

const (
	// DefaultStopTimeout is how long a graceful stop waits for the guest
	// to power off before the VMM is killed.
	DefaultStopTimeout = 30 * time.Second
	// exitWait bounds the wait for a killed VMM to be gone.
	exitWait = 30 * time.Second
)

// halt ends a VMM: it asks the guest to power off and waits up to
// graceful, then (or at once, when graceful is 0, or when the guest did
// not comply) kills the VMM and waits for it to be gone. A VMM already
// gone is not an error. op, when set, logs a graceful stop that failed.
func (s *Service) halt(ctx context.Context, driver vmm.Driver, h vmm.Handle, graceful time.Duration, op *oplog.Log) error {
	if h.PID == 0 || !vmm.Alive(h) {
		return nil
	}
	if graceful > 0 {
		sctx, cancel := context.WithTimeout(ctx, graceful)
		err := driver.Stop(sctx, h)
		cancel()
		if err == nil || errors.Is(err, vmm.ErrExited) {
			return nil
		}
		if op != nil {
			op.Stage("graceful stop failed; killing", "error", err.Error(), "timeout_s", graceful.Seconds())
		}
	}
	if err := driver.Kill(h); err != nil {
		return fmt.Errorf("kill %s pid %d: %w", driver.Name(), h.PID, err)
	}
	wctx, cancel := context.WithTimeout(ctx, exitWait)
	defer cancel()
	if err := vmm.Wait(wctx, h); err != nil {
		return fmt.Errorf("%s pid %d did not exit after SIGKILL: %w", driver.Name(), h.PID, err)
	}
	return nil
}

// release gives back what a running VM holds besides its VMM: NAT, its
// tap (to the pool), its dm-snapshot, and its handles file; the row's
// teardown fields are cleared. Each step is tolerant of a thing already
// gone. When a step fails, what was released is recorded as released
// (handles.json and the row keep only the rest), so a retry gives back
// nothing twice: a tap returned twice could be handed to two VMs. A tap
// with NAT still behind it is kept, as the pool requires.
func (s *Service) release(ctx context.Context, vm *model.VMRecord, h vmHandles) error {
	var errs []error
	if h.NATIP == "" && vm.Spec.NATEnabled && h.Tap != "" {
		h.NATIP = vm.Runtime.GuestIP // handles lost: NAT may be on
	}
	if h.NATIP != "" {
		if err := s.helper.DisableNAT(ctx, h.NATIP); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			errs = append(errs, fmt.Errorf("disable NAT for %s: %w", h.NATIP, err))
		} else {
			h.NATIP = ""
		}
	}
	if h.Tap != "" && h.NATIP == "" {
		if err := s.taps.Return(ctx, h.Tap); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			errs = append(errs, fmt.Errorf("release tap %s: %w", h.Tap, err))
		} else {
			h.Tap = ""
		}
	}
	if h.DMName != "" {
		if err := s.helper.DetachOverlay(ctx, h.DMName); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			errs = append(errs, fmt.Errorf("remove dm-snapshot %s: %w", h.DMName, err))
		} else {
			h.DMName, h.BaseLoop, h.COWLoop = "", "", ""
		}
	}
	if err := errors.Join(errs...); err != nil {
		return errors.Join(err, s.recordHeld(ctx, vm, h))
	}
	if err := removeHandles(vm.Runtime.VMDir); err != nil {
		return err
	}
	vm.Runtime.TapDevice, vm.Runtime.BaseLoop, vm.Runtime.COWLoop, vm.Runtime.DMName, vm.Runtime.DMDev = "", "", "", "", ""
	return s.save(ctx, vm)
}

// recordHeld writes what a VM still holds after a partial release to
// its handles.json and row.
func (s *Service) recordHeld(ctx context.Context, vm *model.VMRecord, h vmHandles) error {
	vm.Runtime.TapDevice, vm.Runtime.BaseLoop, vm.Runtime.COWLoop = h.Tap, h.BaseLoop, h.COWLoop
	if h.DMName == "" {
		vm.Runtime.DMName, vm.Runtime.DMDev = "", ""
	}
	if err := writeHandles(vm.Runtime.VMDir, h); err != nil {
		return fmt.Errorf("record what is still held: %w", err)
	}
	if err := s.save(ctx, vm); err != nil {
		return fmt.Errorf("record what is still held: %w", err)
	}
	return nil
}

// teardown ends whatever runs for vm and releases what it holds. With
// kill it does not ask the guest first.
func (s *Service) teardown(ctx context.Context, vm model.VMRecord, kill bool) error {
	s.stopMonitor(vm.ID)
	h := s.handlesOf(vm)
	if h.VMM.PID != 0 && vmm.Alive(h.VMM) {
		driver, err := s.driver(vm.Runtime.VMM)
		if err != nil {
			return err
		}
		graceful := DefaultStopTimeout
		if kill {
			graceful = 0
		}
		if err := s.halt(ctx, driver, h.VMM, graceful, nil); err != nil {
			return err
		}
	}
	return s.release(ctx, &vm, h)
}

// stopVM stops a running VM — gracefully within timeout (0: the
// default), or killed at once with force — and records it stopped. A
// VM that is not running is left as it is. Its steps are logged (at
// debug level) as stages — halt, release, record — which are also the
// crash tests' failpoints.
func (s *Service) stopVM(ctx context.Context, vm *model.VMRecord, timeout time.Duration, force bool, op *oplog.Log) error {
	if timeout < 0 {
		return invalid("--timeout %d: use 1 or more seconds (left out: %d), or --force to kill at once", int(timeout.Seconds()), int(DefaultStopTimeout.Seconds()))
	}
	if vm.State != model.VMStateRunning {
		return nil
	}
	if timeout == 0 {
		timeout = DefaultStopTimeout
	}
	if force {
		timeout = 0
	}
	s.stopMonitor(vm.ID)
	h := s.handlesOf(*vm)
	driver, err := s.driver(vm.Runtime.VMM)
	if err != nil {
		return err
	}
	op.DebugStage("halt")
	if err := s.halt(ctx, driver, h.VMM, timeout, op); err != nil {
		return err
	}
	op.DebugStage("release")
	if err := s.release(ctx, vm, h); err != nil {
		// The VMM is gone: the VM must not stay recorded running, with
		// no one watching it.
		err = fmt.Errorf("its VMM is stopped, but releasing what it held failed: %w; start it again, or remove it with 'banger vm rm %s', once that is fixed", err, vm.Name)
		if serr := s.setState(ctx, vm, model.VMStateError, err.Error()); serr != nil {
			op.Warn("vm error state not recorded", "error", serr.Error())
		}
		return err
	}
	op.DebugStage("record")
	return s.setState(ctx, vm, model.VMStateStopped, "")
}

// handlesOf returns the VM's live handles: handles.json, or, when it is
// missing or corrupt, what the row mirrors (and the VMM found by its
// directory among the host's processes).
func (s *Service) handlesOf(vm model.VMRecord) vmHandles {
	h, ok, err := readHandles(vm.Runtime.VMDir)
	if ok {
		return h
	}
	if err != nil {
		s.logger.Warn("vm handles unreadable; using the row's teardown fields", append(oplog.VMAttrs(vm), "error", err.Error())...)
	}
	h = vmHandles{Tap: vm.Runtime.TapDevice, BaseLoop: vm.Runtime.BaseLoop, COWLoop: vm.Runtime.COWLoop, DMName: vm.Runtime.DMName}
	if vm.Spec.NATEnabled && h.Tap != "" {
		h.NATIP = vm.Runtime.GuestIP
	}
	if pid := findVMMProcess(vm.Runtime.VMDir, vm.Runtime.APISockPath); pid > 0 {
		if handle, err := vmm.HandleFor(vm.Runtime.VMM, pid, vm.Runtime.APISockPath); err == nil {
			h.VMM = handle
		}
	}
	return h
}
