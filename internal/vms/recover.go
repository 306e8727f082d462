package vms

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"banger/internal/model"
	"banger/internal/opid"
	"banger/internal/oplog"
	"banger/internal/vmm"
)

// startMonitor watches a running VM's VMM. When it exits without banger
// stopping it — the guest powered off, crashed, or the process was
// killed — the VM's tap and NAT are released and it is recorded as
// stopped with the reason, within the pidfd's wake-up.
func (s *Service) startMonitor(vm model.VMRecord, h vmHandles) {
	ctx, cancel := context.WithCancel(s.bgCtx)
	s.monitorMu.Lock()
	if old, ok := s.monitors[vm.ID]; ok {
		old()
	}
	s.monitors[vm.ID] = cancel
	s.monitorMu.Unlock()
	go func() {
		if err := vmm.Wait(ctx, h.VMM); err != nil {
			return // cancelled: someone else is stopping it
		}
		s.vmmExited(vm.ID, h)
	}()
}

// stopMonitor stops watching a VM (banger is about to stop it).
func (s *Service) stopMonitor(id string) {
	s.monitorMu.Lock()
	defer s.monitorMu.Unlock()
	if cancel, ok := s.monitors[id]; ok {
		cancel()
		delete(s.monitors, id)
	}
}

// vmmExited records a VMM that went away on its own.
func (s *Service) vmmExited(id string, h vmHandles) {
	unlock := s.lockVM(id)
	defer unlock()
	ctx, cancel := context.WithTimeout(opid.Fresh(s.bgCtx), cleanupLimit)
	defer cancel()
	vm, err := s.store.GetVM(ctx, id)
	if err != nil || vm.State != model.VMStateRunning {
		return // removed or already stopped by banger
	}
	if cur, ok, _ := readHandles(vm.Runtime.VMDir); ok && cur.VMM != h.VMM {
		return // a newer VMM runs for it
	}
	s.stopMonitor(id)
	op := oplog.Begin(ctx, s.logger, "vm.exited", oplog.VMAttrs(vm)...)
	s.settleDeadVM(ctx, op, vm, h, "the VMM exited without banger stopping it (the guest powered off, or the process died)")
}

// settleDeadVM releases what a VM whose VMM is gone holds and records it
// stopped, or in error when the release fails.
func (s *Service) settleDeadVM(ctx context.Context, op *oplog.Log, vm model.VMRecord, h vmHandles, reason string) {
	state, msg := model.VMStateStopped, reason+"; console log: "+vm.Runtime.LogPath
	err := s.release(ctx, &vm, h)
	if err != nil {
		state, msg = model.VMStateError, fmt.Sprintf("%s; releasing its tap and NAT failed: %v", reason, err)
	}
	if serr := s.setState(ctx, &vm, state, msg); serr != nil && err == nil {
		err = serr
	}
	if err != nil {
		op.Fail(err)
		return
	}
	op.Done("state", string(vm.State), "reason", reason)
}

// Recover, at start-up, reconciles every VM with what is really there:
// a VM recorded as running whose VMM still runs (same pid, same start
// time) is adopted and watched again; one whose VMM is gone has its tap
// and NAT released and is recorded stopped with the reason; a VM whose
// create was cut off by the daemon's death is torn down and kept in the
// error state, so the user sees it and can remove it; a created or
// stopped VM that still holds something — its start was cut off after
// it took a tap, NAT or a VMM — has all of it released and says so.
func (s *Service) Recover(ctx context.Context) {
	ctx = opid.Fresh(ctx)
	op := oplog.Begin(ctx, s.logger, "vm.recover")
	vms, err := s.store.ListVMs(ctx)
	if err != nil {
		op.Fail(err)
		return
	}
	adopted, stopped, broken, starts := 0, 0, 0, 0
	nat := s.helperNAT(ctx)
	for _, vm := range vms {
		switch {
		case isCreateInFlight(vm):
			broken++
			s.settleInterruptedCreate(ctx, vm)
		case holdsHandles(vm):
			starts++
			s.settleInterruptedStart(ctx, vm)
		case vm.State == model.VMStateRunning:
			h := s.handlesOf(vm)
			if h.VMM.PID != 0 && vmm.Alive(h.VMM) {
				adopted++
				s.reconcileNAT(ctx, op, vm, &h, nat)
				s.startMonitor(vm, h)
				if s.hooks.Started != nil {
					s.hooks.Started(ctx, vm)
				}
				op.Stage("adopted", append(oplog.VMAttrs(vm), "pid", h.VMM.PID)...)
				continue
			}
			stopped++
			vop := oplog.Begin(ctx, s.logger, "vm.recover.dead", oplog.VMAttrs(vm)...)
			s.settleDeadVM(ctx, vop, vm, h, "the VMM exited while bangerd was not running")
		}
	}
	op.Done("adopted", adopted, "stopped", stopped, "interrupted_creates", broken, "interrupted_starts", starts)
}

// holdsHandles reports a VM that is not running, yet holds what only a
// running one should: handles.json, or a tap or dm-snapshot on its row.
// Its start was cut off by the daemon's death after it took them.
func holdsHandles(vm model.VMRecord) bool {
	return (vm.State == model.VMStateCreated || vm.State == model.VMStateStopped) && holdsAnything(vm)
}

// holdsAnything reports a VM whose row or handles.json names a tap,
// dm-snapshot or VMM: what a teardown must release.
func holdsAnything(vm model.VMRecord) bool {
	if vm.Runtime.TapDevice != "" || vm.Runtime.DMName != "" {
		return true
	}
	_, err := os.Lstat(filepath.Join(vm.Runtime.VMDir, handlesFile))
	return err == nil
}

// settleInterruptedStart kills the VMM a cut-off start may have left and
// releases its tap, NAT and dm-snapshot. The VM keeps its state, with
// the reason; when the release fails it is kept in error, for rm.
func (s *Service) settleInterruptedStart(ctx context.Context, vm model.VMRecord) {
	op := oplog.Begin(ctx, s.logger, "vm.recover.start", oplog.VMAttrs(vm)...)
	err := s.teardown(ctx, vm, true)
	if cur, gerr := s.store.GetVM(ctx, vm.ID); gerr == nil {
		vm = cur
	}
	state, reason := vm.State, "its start was interrupted (bangerd stopped); what it had taken is released, and it can be started again"
	if err != nil {
		state, reason = model.VMStateError, fmt.Sprintf("its start was interrupted (bangerd stopped), and releasing what it had taken failed: %v; remove it with 'banger vm rm %s'", err, vm.Name)
	}
	if serr := s.setState(ctx, &vm, state, reason); serr != nil && err == nil {
		err = serr
	}
	if err != nil {
		op.Fail(err)
		return
	}
	op.Done()
}

func isCreateInFlight(vm model.VMRecord) bool {
	return strings.HasPrefix(vm.Runtime.LastError, createInFlight)
}

// settleInterruptedCreate tears down what a create that never finished
// made, and leaves the VM in error, to be removed.
func (s *Service) settleInterruptedCreate(ctx context.Context, vm model.VMRecord) {
	op := oplog.Begin(ctx, s.logger, "vm.recover.create", oplog.VMAttrs(vm)...)
	err := s.teardown(ctx, vm, true)
	if cur, gerr := s.store.GetVM(ctx, vm.ID); gerr == nil {
		vm = cur
	}
	reason := createInterrupted + " (bangerd stopped); remove it with 'banger vm rm " + vm.Name + "'"
	if err != nil {
		reason += fmt.Sprintf("; releasing what it made failed: %v", err)
	}
	if serr := s.setState(ctx, &vm, model.VMStateError, reason); serr != nil && err == nil {
		err = serr
	}
	if err != nil {
		op.Fail(err)
		return
	}
	op.Done()
}

// TapsInUse are the taps VMs hold, as their rows record them (the
// teardown mirror of their handles): what the tap pool must not adopt.
func (s *Service) TapsInUse(ctx context.Context) (map[string]bool, error) {
	vms, err := s.store.ListVMs(ctx)
	if err != nil {
		return nil, err
	}
	inUse := make(map[string]bool, len(vms))
	for _, vm := range vms {
		if vm.Runtime.TapDevice != "" {
			inUse[vm.Runtime.TapDevice] = true
		}
	}
	return inUse, nil
}

// findVMMProcess looks for a process of this user whose command line
// names the VM's directory or its control socket: how a VMM is found
// when handles.json is lost.
func findVMMProcess(vmDir, controlSocket string) int {
	if vmDir == "" {
		return 0
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	needle := []byte(vmDir + string(filepath.Separator))
	uid := uint32(os.Getuid())
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if err := syscall.Stat("/proc/"+e.Name(), &st); err != nil || st.Uid != uid {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		// QEMU's command line names files in the VM's directory;
		// Firecracker's only its API socket.
		if err == nil && (bytes.Contains(cmdline, needle) || (controlSocket != "" && bytes.Contains(cmdline, []byte(controlSocket+"\x00")))) {
			return pid
		}
	}
	return 0
}
