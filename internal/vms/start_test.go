package vms

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"banger/internal/api"
	"banger/internal/errdefs"
	"banger/internal/model"
)

// TestStartBeginReportsStages: a start begun as an operation reports
// the boot's stages in order, each event stamped by the daemon, and ends
// with the VM running in its result.
func TestStartBeginReportsStages(t *testing.T) {
	e := newEnv(t)
	vm := e.mustCreate("later", false, true)
	ctx := context.Background()
	op, err := e.s.StartBegin(ctx, "later")
	if err != nil {
		t.Fatal(err)
	}
	if op.Kind != KindStart || op.Target != "later" {
		t.Errorf("operation %s on %q", op.Kind, op.Target)
	}
	st, err := e.s.ops.Wait(ctx, op.ID)
	if err != nil || st.State != model.OperationSucceeded {
		t.Fatalf("start operation: %v (%s: %s)", err, st.State, st.ErrorMessage)
	}
	all, err := e.s.ops.Status(ctx, op.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var stages []string
	var last time.Time
	for _, ev := range all.Events {
		if ev.Type == api.EventStage {
			stages = append(stages, ev.Stage)
		}
		if ev.Time.Before(last) || ev.Time.Before(op.CreatedAt) {
			t.Errorf("event %d at %s, before the one before it or the operation", ev.Seq, ev.Time)
		}
		last = ev.Time
	}
	if want := []string{stageTap, stageBoot, stageWaitSSH}; !slices.Equal(stages, want) {
		t.Errorf("stages %q, want %q", stages, want)
	}
	var det api.VMDetail
	if err := json.Unmarshal(all.Result, &det); err != nil || det.State != model.VMStateRunning || det.ID != vm.ID {
		t.Errorf("result %s: %v", all.Result, err)
	}
	if row := e.vm(vm.ID); row.State != model.VMStateRunning {
		t.Errorf("row %q after the start", row.State)
	}
}

// TestStartBeginRefusesAtOnce: a VM that is missing or running is
// refused by StartBegin itself, and no operation begins.
func TestStartBeginRefusesAtOnce(t *testing.T) {
	e := newEnv(t)
	e.mustCreate("up", false, false)
	ctx := context.Background()
	if _, err := e.s.StartBegin(ctx, "nosuch"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("start of a missing VM: %v", err)
	}
	if _, err := e.s.StartBegin(ctx, "up"); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "running already") {
		t.Errorf("start of a running VM: %v", err)
	}
	if running := e.s.ops.Running(KindStart, "up"); len(running) != 0 {
		t.Errorf("a refused start left operations: %v", running)
	}
	// The refusal released the VM's lock: a stop goes through.
	if _, err := e.s.Stop(ctx, api.VMStopParams{Name: "up", Force: true}); err != nil {
		t.Errorf("stop after a refused start: %v", err)
	}
}

// TestStartBeginFailureIsRecorded: a start operation whose VMM does not
// start fails with the cause, and the VM is left in error, released.
func TestStartBeginFailureIsRecorded(t *testing.T) {
	e := newEnv(t)
	vm := e.mustCreate("flaky", false, true)
	e.drv.set(func(d *fakeDriver) { d.startErr = errors.New("kvm busy") })
	ctx := context.Background()
	op, err := e.s.StartBegin(ctx, "flaky")
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.s.ops.Wait(ctx, op.ID)
	if err != nil || st.State != model.OperationFailed || !strings.Contains(st.ErrorMessage, "kvm busy") {
		t.Fatalf("start operation: %v (%s: %q)", err, st.State, st.ErrorMessage)
	}
	if row := e.vm(vm.ID); row.State != model.VMStateError || !strings.Contains(row.Runtime.LastError, "kvm busy") {
		t.Errorf("row %q, %q", row.State, row.Runtime.LastError)
	}
	e.assertReleased()
	// The lock was released when the operation ended.
	e.drv.set(func(d *fakeDriver) { d.startErr = nil })
	if _, err := e.s.Start(ctx, "flaky"); err != nil {
		t.Errorf("start after the failed one: %v", err)
	}
}
