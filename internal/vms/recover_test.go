package vms

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"banger/internal/errdefs"
	"banger/internal/model"
)

// leaveRunning makes a VM as a previous bangerd left it running: disks
// made, a tap, NAT when asked, the dm-snapshot, a VMM, all recorded in
// handles.json and the row. (It goes around boot, which would wait for
// an SSH server at the VM's address; the guest server listens at
// 127.0.0.1, the first VM's address only.)
func (e *env) leaveRunning(name string, nat bool) (model.VMRecord, vmHandles) {
	e.t.Helper()
	return e.makeRunning(e.mustCreate(name, nat, true), "sleep")
}

// makeRunning is leaveRunning for a VM made already, with program (a
// path, or a name on PATH) as its VMM's executable.
func (e *env) makeRunning(vm model.VMRecord, program string) (model.VMRecord, vmHandles) {
	e.t.Helper()
	ctx := context.Background()
	nat := vm.Spec.NATEnabled
	tap, _, err := e.taps.Take(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	h := vmHandles{Tap: tap}
	if nat {
		if _, err := e.helper.EnableNAT(ctx, tap, vm.Runtime.GuestIP); err != nil {
			e.t.Fatal(err)
		}
		h.NATIP = vm.Runtime.GuestIP
	}
	base, _ := os.Open(e.image.RootfsPath)
	cow, _ := os.Open(vm.Runtime.SystemOverlay)
	info, err := e.helper.AttachOverlay(ctx, vm.ID, base, cow)
	base.Close()
	cow.Close()
	if err != nil {
		e.t.Fatal(err)
	}
	h.DMName = e.helper.attached()[len(e.helper.attached())-1]
	if h.VMM, err = e.drv.spawnAt(program, vm.Runtime.APISockPath, "600"); err != nil {
		e.t.Fatal(err)
	}
	if err := writeHandles(vm.Runtime.VMDir, h); err != nil {
		e.t.Fatal(err)
	}
	vm.State, vm.Runtime.State, vm.Runtime.LastError = model.VMStateRunning, model.VMStateRunning, ""
	vm.Runtime.TapDevice, vm.Runtime.DMName = tap, h.DMName
	vm.Runtime.BaseLoop, vm.Runtime.COWLoop, vm.Runtime.DMDev = info.BaseLoop, info.COWLoop, info.DMDev
	e.store.put(vm)
	return vm, h
}

// monitored reports whether the service watches the VM's VMM.
func (e *env) monitored(id string) bool {
	e.s.monitorMu.Lock()
	defer e.s.monitorMu.Unlock()
	_, ok := e.s.monitors[id]
	return ok
}

// TestRecoverAdoptsLiveVMM: a VM whose VMM still runs stays running,
// holding what it held, fires Started for the new daemon's hooks, and is
// watched: when its VMM then exits, it is settled.
func TestRecoverAdoptsLiveVMM(t *testing.T) {
	e := newEnv(t)
	vm, h := e.leaveRunning("alive", true)
	e.restart()
	e.s.Recover(context.Background())
	row := e.vm(vm.ID)
	if row.State != model.VMStateRunning || row.Runtime.TapDevice != h.Tap {
		t.Fatalf("after recover: %q, tap %q", row.State, row.Runtime.TapDevice)
	}
	if e.drv.live() != 1 || len(e.taps.held()) != 1 || len(e.helper.natOn()) != 1 || len(e.helper.attached()) != 1 {
		t.Errorf("recover touched a live VM: %d VMMs, taps %v, nat %v, dm %v", e.drv.live(), e.taps.held(), e.helper.natOn(), e.helper.attached())
	}
	if _, stops, kills := e.drv.counts(); stops+kills != 0 {
		t.Errorf("recover stopped (%d) or killed (%d) a live VMM", stops, kills)
	}
	if s, p := e.hooks.counts(vm.ID); s != 1 || p != 0 {
		t.Errorf("hooks started %d, stopped %d; want 1, 0", s, p)
	}
	if !e.monitored(vm.ID) {
		t.Fatal("adopted VM not monitored")
	}
	e.drv.end(h.VMM.PID)
	waitFor(t, "the adopted VM to be settled", func() bool { return e.vm(vm.ID).State == model.VMStateStopped })
	e.assertReleased()
}

// TestRecoverFindsVMMWithoutHandles: handles.json lost, the VMM is found
// among the host's processes by its VM directory, and adopted.
func TestRecoverFindsVMMWithoutHandles(t *testing.T) {
	e := newEnv(t)
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip(err)
	}
	// The VMM's command line names the VM's directory, as QEMU's does.
	vm := e.mustCreate("lost", false, true)
	prog := filepath.Join(vm.Runtime.VMDir, "fakevmm")
	if err := os.Symlink(sleep, prog); err != nil {
		t.Fatal(err)
	}
	vm, h := e.makeRunning(vm, prog)
	if err := removeHandles(vm.Runtime.VMDir); err != nil {
		t.Fatal(err)
	}
	e.restart()
	e.s.Recover(context.Background())
	if row := e.vm(vm.ID); row.State != model.VMStateRunning || !e.monitored(vm.ID) {
		t.Fatalf("VMM found by its directory not adopted: %q, monitored %v", row.State, e.monitored(vm.ID))
	}
	if got := e.s.handlesOf(e.vm(vm.ID)); got.VMM != h.VMM || got.Tap != vm.Runtime.TapDevice {
		t.Errorf("handles from the row and /proc: %+v, want VMM %+v", got, h.VMM)
	}
}

// TestRecoverSettlesDeadVMM: a VM recorded running whose VMM is gone is
// recorded stopped with the reason and its tap, NAT and dm-snapshot are
// released — from handles.json, or from the row's mirror when that is
// lost.
func TestRecoverSettlesDeadVMM(t *testing.T) {
	for _, lost := range []bool{false, true} {
		name := map[bool]string{false: "handles", true: "handles lost"}[lost]
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			vm, h := e.leaveRunning("gone", true)
			e.restart()
			e.drv.end(h.VMM.PID)
			if lost {
				mustWrite(t, filepath.Join(vm.Runtime.VMDir, handlesFile), []byte("{corrupt"))
			}
			e.s.Recover(context.Background())
			row := e.vm(vm.ID)
			if row.State != model.VMStateStopped || !strings.Contains(row.Runtime.LastError, "the VMM exited while bangerd was not running") {
				t.Errorf("after recover: %q, %q", row.State, row.Runtime.LastError)
			}
			e.assertReleased()
			if e.monitored(vm.ID) {
				t.Error("a dead VM is monitored")
			}
			// Stopped fires for the VM the previous daemon ran.
			if s, p := e.hooks.counts(vm.ID); s != 0 || p != 1 {
				t.Errorf("hooks started %d, stopped %d; want 0, 1", s, p)
			}
		})
	}
}

// TestRecoverInterruptedCreate: a VM whose create was cut off (its row
// still says "create in progress") has whatever it got killed and
// released, and is kept in error, refused by start, until rm removes it.
func TestRecoverInterruptedCreate(t *testing.T) {
	e := newEnv(t)
	vm, _ := e.leaveRunning("half", true)
	// Cut off between the VMM's start and the row saying running.
	vm.State, vm.Runtime.State = model.VMStateCreated, model.VMStateCreated
	vm.Runtime.LastError = createInFlight + " (op-123)"
	e.store.put(vm)
	e.restart()
	e.s.Recover(context.Background())
	row := e.vm(vm.ID)
	if row.State != model.VMStateError || !strings.HasPrefix(row.Runtime.LastError, createInterrupted) || !strings.Contains(row.Runtime.LastError, "banger vm rm half") {
		t.Errorf("after recover: %q, %q", row.State, row.Runtime.LastError)
	}
	e.assertReleased()
	if _, _, kills := e.drv.counts(); kills == 0 {
		t.Error("the half-made VM's VMM was not killed")
	}
	if _, err := e.s.Start(context.Background(), "half"); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "never created completely") {
		t.Errorf("start of a half-made VM: %v", err)
	}
	if _, err := e.s.Remove(context.Background(), removeParams("half", false)); err != nil {
		t.Fatalf("rm: %v", err)
	}
	e.assertNothingLeft(vm.ID)
}

// TestRecoverSettlesEachVM: one pass settles live, dead and half-made
// VMs side by side, and leaves stopped ones alone.
func TestRecoverSettlesEachVM(t *testing.T) {
	e := newEnv(t)
	live, _ := e.leaveRunning("live", false)
	dead, dh := e.leaveRunning("dead", true)
	half, _ := e.leaveRunning("half", false)
	half.State, half.Runtime.State, half.Runtime.LastError = model.VMStateCreated, model.VMStateCreated, createInFlight+" (op-9)"
	e.store.put(half)
	idle := e.mustCreate("idle", false, true)
	e.restart()
	e.drv.end(dh.VMM.PID)
	e.s.Recover(context.Background())
	for vm, want := range map[string]model.VMState{live.ID: model.VMStateRunning, dead.ID: model.VMStateStopped, half.ID: model.VMStateError, idle.ID: model.VMStateCreated} {
		if got := e.vm(vm).State; got != want {
			t.Errorf("%s: %q, want %q", e.vm(vm).Name, got, want)
		}
	}
	if held := e.taps.held(); len(held) != 1 || held[0] != live.Runtime.TapDevice {
		t.Errorf("taps held %v, want only %s's", held, live.Name)
	}
	if e.drv.live() != 1 {
		t.Errorf("%d VMMs run, want 1", e.drv.live())
	}
}
