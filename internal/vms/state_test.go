package vms

import (
	"context"
	"errors"
	"strings"
	"testing"

	"banger/internal/api"
	"banger/internal/model"
)

// TestSetStateFunnel: setState records one state (the row's and its
// runtime mirror) and tells the hooks only on the edges into and out of
// running; a row that cannot be written tells them nothing.
func TestSetStateFunnel(t *testing.T) {
	e := newEnv(t)
	vm := e.mustCreate("funnel", false, true)
	ctx := context.Background()
	steps := []struct {
		to               model.VMState
		started, stopped int
	}{
		{model.VMStateRunning, 1, 0},
		{model.VMStateRunning, 1, 0}, // no edge
		{model.VMStateStopped, 1, 1},
		{model.VMStateError, 1, 1}, // not running either side
		{model.VMStateRunning, 2, 1},
		{model.VMStateError, 2, 2},
	}
	for i, st := range steps {
		if err := e.s.setState(ctx, &vm, st.to, "why "+string(st.to)); err != nil {
			t.Fatal(err)
		}
		row := e.vm(vm.ID)
		if row.State != st.to || row.Runtime.State != st.to || row.Runtime.LastError != "why "+string(st.to) {
			t.Errorf("step %d: row state %q, runtime state %q, last error %q", i, row.State, row.Runtime.State, row.Runtime.LastError)
		}
		if started, stopped := e.hooks.counts(vm.ID); started != st.started || stopped != st.stopped {
			t.Errorf("step %d (→%s): hooks started %d, stopped %d; want %d, %d", i, st.to, started, stopped, st.started, st.stopped)
		}
	}
	e.store.failUpdate = errors.New("disk full")
	if err := e.s.setState(ctx, &vm, model.VMStateRunning, ""); err == nil {
		t.Error("setState succeeded with a failing store")
	}
	e.store.failUpdate = nil
	if started, _ := e.hooks.counts(vm.ID); started != 2 {
		t.Errorf("Started fired for a state that was not recorded")
	}
}

// TestLifecycleHooksFireOnce: create, stop, stop again, start, restart
// and rm each fire the hooks exactly at the running edges, and the row
// ends each verb in the state it reports.
func TestLifecycleHooksFireOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	vm := e.mustCreate("cycle", true, false)
	expect := func(step string, state model.VMState, started, stopped int) {
		t.Helper()
		row := e.vm(vm.ID)
		if row.State != state || row.Runtime.State != state {
			t.Errorf("%s: state %q / runtime %q, want %q", step, row.State, row.Runtime.State, state)
		}
		if s, p := e.hooks.counts(vm.ID); s != started || p != stopped {
			t.Errorf("%s: hooks started %d, stopped %d; want %d, %d", step, s, p, started, stopped)
		}
	}
	expect("create", model.VMStateRunning, 1, 0)
	det, err := e.s.Stop(ctx, api.VMStopParams{Name: "cycle"})
	if err != nil || det.State != model.VMStateStopped {
		t.Fatalf("stop: %v (%s)", err, det.State)
	}
	expect("stop", model.VMStateStopped, 1, 1)
	e.assertReleased()
	if _, err := e.s.Stop(ctx, api.VMStopParams{Name: "cycle"}); err != nil {
		t.Fatalf("stop of a stopped VM: %v", err)
	}
	expect("second stop", model.VMStateStopped, 1, 1)
	if _, err := e.s.Start(ctx, "cycle"); err != nil {
		t.Fatalf("start: %v", err)
	}
	expect("start", model.VMStateRunning, 2, 1)
	if _, err := e.s.Restart(ctx, api.VMStopParams{Name: "cycle"}); err != nil {
		t.Fatalf("restart: %v", err)
	}
	expect("restart", model.VMStateRunning, 3, 2)
	if row := e.vm(vm.ID); row.Runtime.LastError != "" {
		t.Errorf("last error after a clean restart: %q", row.Runtime.LastError)
	}
	if _, err := e.s.Remove(ctx, removeParams("cycle", true)); err != nil {
		t.Fatalf("rm --force: %v", err)
	}
	if s, p := e.hooks.counts(vm.ID); s != 3 || p != 3 {
		t.Errorf("rm --force: hooks started %d, stopped %d; want 3, 3", s, p)
	}
	e.assertNothingLeft(vm.ID)
}

// TestVMMExitsOnItsOwn: when the VMM goes away without banger stopping
// it, the monitor releases tap, NAT and dm-snapshot, records the VM
// stopped with the reason, and fires Stopped once; the VM starts again.
func TestVMMExitsOnItsOwn(t *testing.T) {
	e := newEnv(t)
	vm := e.mustCreate("crashy", true, false)
	h, _ := e.handles(vm)
	e.drv.end(h.VMM.PID) // the guest powered off
	waitFor(t, "the monitor to record the VM stopped", func() bool { return e.vm(vm.ID).State == model.VMStateStopped })
	row := e.vm(vm.ID)
	if !strings.Contains(row.Runtime.LastError, "the VMM exited without banger stopping it") || !strings.Contains(row.Runtime.LastError, row.Runtime.LogPath) {
		t.Errorf("last error %q: want the reason and the console log", row.Runtime.LastError)
	}
	if row.Runtime.TapDevice != "" || row.Runtime.DMName != "" || row.Runtime.DMDev != "" {
		t.Errorf("teardown fields not cleared: %+v", row.Runtime)
	}
	if _, ok := e.handles(row); ok {
		t.Error("handles.json kept for a VM that no longer runs")
	}
	e.assertReleased()
	if s, p := e.hooks.counts(vm.ID); s != 1 || p != 1 {
		t.Errorf("hooks started %d, stopped %d; want 1, 1", s, p)
	}
	if _, err := e.s.Stop(context.Background(), api.VMStopParams{Name: "crashy"}); err != nil {
		t.Fatalf("stop after exit: %v", err)
	}
	if _, p := e.hooks.counts(vm.ID); p != 1 {
		t.Errorf("Stopped fired %d times; want once", p)
	}
	if _, err := e.s.Start(context.Background(), "crashy"); err != nil {
		t.Fatalf("start after exit: %v", err)
	}
	if row := e.vm(vm.ID); row.State != model.VMStateRunning || row.Runtime.LastError != "" {
		t.Errorf("after start: %q, %q", row.State, row.Runtime.LastError)
	}
}

// TestFailedStartRecordsError: a start whose VMM does not start leaves
// the VM in error with the reason, holding nothing, and no hook fired;
// the VM can be started again.
func TestFailedStartRecordsError(t *testing.T) {
	e := newEnv(t)
	vm := e.mustCreate("flaky", true, true)
	cause := errors.New("kvm busy")
	e.drv.set(func(d *fakeDriver) { d.startErr = cause })
	if _, err := e.s.Start(context.Background(), "flaky"); !errors.Is(err, cause) {
		t.Fatalf("start: %v, want it to wrap %v", err, cause)
	}
	row := e.vm(vm.ID)
	if row.State != model.VMStateError || !strings.Contains(row.Runtime.LastError, "kvm busy") {
		t.Errorf("after a failed start: %q, %q", row.State, row.Runtime.LastError)
	}
	e.assertReleased()
	if s, p := e.hooks.counts(vm.ID); s != 0 || p != 0 {
		t.Errorf("hooks started %d, stopped %d for a VM that never ran", s, p)
	}
	e.drv.set(func(d *fakeDriver) { d.startErr = nil })
	if _, err := e.s.Start(context.Background(), "flaky"); err != nil {
		t.Fatalf("second start: %v", err)
	}
}

// TestStartFailsAfterVMMRan: a VMM that dies before the guest answers
// fires Started and then Stopped, and the VM ends in error, released.
func TestStartFailsAfterVMMRan(t *testing.T) {
	e := newEnv(t)
	vm := e.mustCreate("dies", false, true)
	e.guestDown.Store(true)
	e.drv.set(func(d *fakeDriver) { d.lifetime = "0.3" })
	_, err := e.s.Start(context.Background(), "dies")
	if err == nil || !strings.Contains(err.Error(), "the VMM exited while the guest booted") {
		t.Fatalf("start: %v", err)
	}
	if row := e.vm(vm.ID); row.State != model.VMStateError {
		t.Errorf("state %q, want error", row.State)
	}
	e.assertReleased()
	if s, p := e.hooks.counts(vm.ID); s != 1 || p != 1 {
		t.Errorf("hooks started %d, stopped %d; want 1, 1", s, p)
	}
}
