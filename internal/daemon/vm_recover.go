package daemon

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"banger/internal/model"
	"banger/internal/vmm"
)

// startMonitor watches a running VM's VMM. When it exits without banger
// stopping it — the guest powered off, crashed, or the process was
// killed — the VM's tap and NAT are released and it is recorded as
// stopped with the reason, within the pidfd's wake-up.
func (d *Daemon) startMonitor(vm model.VMRecord, h vmHandles) {
	ctx, cancel := context.WithCancel(d.bgCtx)
	d.monitorMu.Lock()
	if old, ok := d.monitors[vm.ID]; ok {
		old()
	}
	d.monitors[vm.ID] = cancel
	d.monitorMu.Unlock()
	go func() {
		if err := vmm.Wait(ctx, h.VMM); err != nil {
			return // cancelled: someone else is stopping it
		}
		d.vmmExited(vm.ID, h)
	}()
}

// stopMonitor stops watching a VM (banger is about to stop it).
func (d *Daemon) stopMonitor(id string) {
	d.monitorMu.Lock()
	defer d.monitorMu.Unlock()
	if cancel, ok := d.monitors[id]; ok {
		cancel()
		delete(d.monitors, id)
	}
}

func (d *Daemon) stopAllMonitors() {
	d.monitorMu.Lock()
	defer d.monitorMu.Unlock()
	for id, cancel := range d.monitors {
		cancel()
		delete(d.monitors, id)
	}
}

// vmmExited records a VMM that went away on its own.
func (d *Daemon) vmmExited(id string, h vmHandles) {
	unlock := d.lockVM(id)
	defer unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(d.bgCtx), cleanupLimit)
	defer cancel()
	ctx = WithOpID(ctx, newOpID())
	vm, err := d.store.GetVM(ctx, id)
	if err != nil || vm.State != model.VMStateRunning {
		return // removed or already stopped by banger
	}
	if cur, ok, _ := readHandles(vm.Runtime.VMDir); ok && cur.VMM != h.VMM {
		return // a newer VMM runs for it
	}
	d.stopMonitor(id)
	op := d.beginOperation(ctx, "vm.exited", vmLogAttrs(vm)...)
	reason := "the VMM exited without banger stopping it (the guest powered off, or the process died)"
	d.settleDeadVM(ctx, op, vm, h, reason)
}

// settleDeadVM releases what a VM whose VMM is gone holds and records it
// stopped, or in error when the release fails.
func (d *Daemon) settleDeadVM(ctx context.Context, op *operationLog, vm model.VMRecord, h vmHandles, reason string) {
	err := d.release(ctx, &vm, h)
	vm.State = model.VMStateStopped
	vm.Runtime.LastError = reason + "; console log: " + vm.Runtime.LogPath
	if err != nil {
		vm.State = model.VMStateError
		vm.Runtime.LastError = fmt.Sprintf("%s; releasing its tap and NAT failed: %v", reason, err)
	}
	vm.UpdatedAt = model.Now()
	if uerr := d.store.UpdateVM(ctx, vm); uerr != nil && err == nil {
		err = uerr
	}
	if err != nil {
		op.fail(err)
		return
	}
	op.done("state", string(vm.State), "reason", reason)
}

// recoverVMs, at start-up, reconciles every VM with what is really
// there: a VM recorded as running whose VMM still runs (same pid, same
// start time) is adopted and watched again; one whose VMM is gone has
// its tap and NAT released and is recorded stopped with the reason; a
// VM whose create was cut off by the daemon's death is torn down and
// kept in the error state, so the user sees it and can remove it.
func (d *Daemon) recoverVMs(ctx context.Context) {
	ctx = WithOpID(ctx, newOpID())
	op := d.beginOperation(ctx, "vm.recover")
	vms, err := d.store.ListVMs(ctx)
	if err != nil {
		op.fail(err)
		return
	}
	adopted, stopped, broken := 0, 0, 0
	for _, vm := range vms {
		switch {
		case strings.HasPrefix(vm.Runtime.LastError, createInFlight):
			broken++
			d.settleInterruptedCreate(ctx, vm)
		case vm.State == model.VMStateRunning:
			h := d.handlesOf(vm)
			if h.VMM.PID != 0 && vmm.Alive(h.VMM) {
				adopted++
				d.startMonitor(vm, h)
				op.stage("adopted", append(vmLogAttrs(vm), "pid", h.VMM.PID)...)
				continue
			}
			stopped++
			vop := d.beginOperation(ctx, "vm.recover.dead", vmLogAttrs(vm)...)
			d.settleDeadVM(ctx, vop, vm, h, "the VMM exited while bangerd was not running")
		}
	}
	op.done("adopted", adopted, "stopped", stopped, "interrupted_creates", broken)
}

// settleInterruptedCreate tears down what a create that never finished
// made, and leaves the VM in error, to be removed.
func (d *Daemon) settleInterruptedCreate(ctx context.Context, vm model.VMRecord) {
	op := d.beginOperation(ctx, "vm.recover.create", vmLogAttrs(vm)...)
	err := d.teardown(ctx, vm, true)
	if cur, gerr := d.store.GetVM(ctx, vm.ID); gerr == nil {
		vm = cur
	}
	vm.State = model.VMStateError
	vm.Runtime.LastError = createInterrupted + " (bangerd stopped); remove it with 'banger vm rm " + vm.Name + "'"
	if err != nil {
		vm.Runtime.LastError += fmt.Sprintf("; releasing what it made failed: %v", err)
	}
	vm.UpdatedAt = model.Now()
	if uerr := d.store.UpdateVM(ctx, vm); uerr != nil && err == nil {
		err = uerr
	}
	if err != nil {
		op.fail(err)
		return
	}
	op.done()
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
	uid := os.Getuid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if fi, err := os.Stat("/proc/" + e.Name()); err != nil || ownerOf(fi) != uid {
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
