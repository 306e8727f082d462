package vms

import (
	"context"
	"errors"
	"strings"
	"testing"

	"banger/internal/api"
	"banger/internal/model"
)

var errHelperGone = errors.New("banger-helper is not running")

// TestStopWithHelperDown: a stop whose VMM is killed but whose NAT the
// helper cannot remove leaves the VM in error with the reason — not
// recorded running with no VMM and no one watching it — and a later
// start, with the helper back, first releases what it still held, so
// its old tap is not leaked under a new one. (Found by the crash
// matrix: stop --force with banger-helper killed.)
func TestStopWithHelperDown(t *testing.T) {
	e := newEnv(t)
	vm := e.mustCreate("nat", true, false)
	old := vm.Runtime.TapDevice
	e.helper.set(func(f *fakeHelper) { f.disableErr = errHelperGone })
	if _, err := e.s.Stop(context.Background(), api.VMStopParams{Name: "nat", Force: true}); err == nil || !strings.Contains(err.Error(), "releasing what it held failed") {
		t.Fatalf("stop with the helper down: %v", err)
	}
	row := e.vm("nat")
	if row.State != model.VMStateError || !strings.Contains(row.Runtime.LastError, errHelperGone.Error()) {
		t.Errorf("after the failed stop: %q, %q", row.State, row.Runtime.LastError)
	}
	if e.drv.live() != 0 || e.monitored(vm.ID) {
		t.Errorf("%d VMMs live, monitored %v", e.drv.live(), e.monitored(vm.ID))
	}
	e.helper.set(func(f *fakeHelper) { f.disableErr = nil })
	if _, err := e.s.Start(context.Background(), "nat"); err != nil {
		t.Fatalf("start once the helper is back: %v", err)
	}
	if held := e.taps.held(); len(held) != 1 || held[0] == old {
		t.Errorf("taps held %v after the start; the old one, %s, must have been returned", held, old)
	}
	if on := e.helper.natOn(); len(on) != 1 {
		t.Errorf("NAT on for %v", on)
	}
}

// TestRemoveWithHelperDown: rm --force of a running VM whose teardown
// fails half-way keeps the VM in error with the reason, not running;
// rm again, with the helper back, removes it all.
func TestRemoveWithHelperDown(t *testing.T) {
	e := newEnv(t)
	vm := e.mustCreate("nat", true, false)
	e.helper.set(func(f *fakeHelper) { f.disableErr = errHelperGone })
	if _, err := e.s.Remove(context.Background(), removeParams("nat", true)); err == nil {
		t.Fatal("rm with the helper down succeeded")
	}
	if row := e.vm("nat"); row.State != model.VMStateError || !strings.Contains(row.Runtime.LastError, "rm did not finish") {
		t.Errorf("after the failed rm: %q, %q", row.State, row.Runtime.LastError)
	}
	e.helper.set(func(f *fakeHelper) { f.disableErr = nil })
	if _, err := e.s.Remove(context.Background(), removeParams("nat", false)); err != nil {
		t.Fatalf("rm once the helper is back: %v", err)
	}
	e.assertNothingLeft(vm.ID)
}

// TestRecoverReconcilesNAT: a daemon that died during `vm set --nat`
// between the helper's change and the record's leaves them disagreeing;
// the next daemon makes the host match the record, both ways. (Found by
// the crash matrix: set --nat=false, bangerd killed before the record.)
func TestRecoverReconcilesNAT(t *testing.T) {
	for _, want := range []bool{true, false} {
		t.Run(map[bool]string{true: "record on, host off", false: "record off, host on"}[want], func(t *testing.T) {
			e := newEnv(t)
			vm, h := e.leaveRunning("n", want)
			ctx := context.Background()
			if want {
				e.helper.DisableNAT(ctx, vm.Runtime.GuestIP)
				h.NATIP = ""
			} else {
				e.helper.EnableNAT(ctx, h.Tap, vm.Runtime.GuestIP)
				h.NATIP = vm.Runtime.GuestIP
			}
			if err := writeHandles(vm.Runtime.VMDir, h); err != nil {
				t.Fatal(err)
			}
			e.restart()
			e.s.Recover(ctx)
			if on := len(e.helper.natOn()) == 1; on != want {
				t.Errorf("NAT on: %v, want %v (the record's)", on, want)
			}
			if got, _ := e.handles(vm); (got.NATIP != "") != want {
				t.Errorf("handles say NAT %q, want on: %v", got.NATIP, want)
			}
			if row := e.vm("n"); row.State != model.VMStateRunning {
				t.Errorf("state %q", row.State)
			}
		})
	}
}
