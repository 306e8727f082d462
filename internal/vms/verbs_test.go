package vms

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"banger/internal/api"
	"banger/internal/errdefs"
	"banger/internal/model"
)

// TestStop: a graceful stop asks the driver to stop the guest; with
// force the VMM is killed at once; a guest that ignores the request is
// killed after the timeout. Each ends stopped, released, Stopped fired
// once.
func TestStop(t *testing.T) {
	tests := []struct {
		name         string
		params       api.VMStopParams
		ignoreStop   bool
		stops, kills int
	}{
		{"graceful", api.VMStopParams{}, false, 1, 0},
		{"force", api.VMStopParams{Force: true, TimeoutSeconds: 5}, true, 0, 1},
		{"graceful times out", api.VMStopParams{TimeoutSeconds: 1}, true, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			vm := e.mustCreate("stopme", true, false)
			e.drv.set(func(d *fakeDriver) { d.ignoreStop = tt.ignoreStop })
			tt.params.Name = "stopme"
			det, err := e.s.Stop(context.Background(), tt.params)
			if err != nil || det.State != model.VMStateStopped || det.PID != 0 {
				t.Fatalf("stop: %v (state %q, pid %d)", err, det.State, det.PID)
			}
			if _, stops, kills := e.drv.counts(); stops != tt.stops || kills != tt.kills {
				t.Errorf("driver stops %d, kills %d; want %d, %d", stops, kills, tt.stops, tt.kills)
			}
			if row := e.vm(vm.ID); row.State != model.VMStateStopped || row.Runtime.LastError != "" {
				t.Errorf("row %q, %q", row.State, row.Runtime.LastError)
			}
			e.assertReleased()
			if _, p := e.hooks.counts(vm.ID); p != 1 {
				t.Errorf("Stopped fired %d times", p)
			}
		})
	}
}

// TestStopRefusesNegativeTimeout: a negative timeout is refused, saying
// what is accepted, for a running VM and a stopped one alike; it is not
// the default in disguise, and the VM is left as it was.
func TestStopRefusesNegativeTimeout(t *testing.T) {
	e := newEnv(t)
	e.mustCreate("up", false, false)
	e.mustCreate("down", false, true)
	for _, name := range []string{"up", "down"} {
		for _, verb := range []func(context.Context, api.VMStopParams) (api.VMDetail, error){e.s.Stop, e.s.Restart} {
			_, err := verb(context.Background(), api.VMStopParams{Name: name, TimeoutSeconds: -5})
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "--timeout -5: use 1 or more seconds") {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	if row := e.vm("up"); row.State != model.VMStateRunning {
		t.Errorf("a refused stop changed the VM: %q", row.State)
	}
	if _, stops, kills := e.drv.counts(); stops != 0 || kills != 0 {
		t.Errorf("driver stops %d, kills %d after refused stops", stops, kills)
	}
}

// TestRemoveRunning: rm of a running VM is refused without force,
// saying what to do, and leaves it running; with force everything goes.
func TestRemoveRunning(t *testing.T) {
	e := newEnv(t)
	vm := e.mustCreate("busy", true, false)
	_, err := e.s.Remove(context.Background(), removeParams("busy", false))
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "vm busy is running; stop it first, or remove it with --force") {
		t.Fatalf("rm without force: %v", err)
	}
	if row := e.vm(vm.ID); row.State != model.VMStateRunning || e.drv.live() != 1 || len(e.taps.held()) != 1 {
		t.Fatalf("a refused rm changed the VM: %q, %d VMMs, taps %v", row.State, e.drv.live(), e.taps.held())
	}
	det, err := e.s.Remove(context.Background(), removeParams(vm.ID[:8], true))
	if err != nil || det.ID != vm.ID {
		t.Fatalf("rm --force: %v (%s)", err, det.ID)
	}
	e.assertNothingLeft(vm.ID)
	if _, p := e.hooks.counts(vm.ID); p != 1 {
		t.Errorf("Stopped fired %d times", p)
	}
	if _, err := e.s.Remove(context.Background(), removeParams("busy", true)); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("rm of a removed VM: %v", err)
	}
}

// TestCancelledCreateRollsBack: a create cancelled while it waits for
// the guest is torn down like a failed one.
func TestCancelledCreateRollsBack(t *testing.T) {
	e := newEnv(t)
	e.guestDown.Store(true)
	op, err := e.s.CreateBegin(context.Background(), withNAT(e.req("cancelme")))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the VMM to start", func() bool { return e.drv.live() == 1 })
	if err := e.s.ops.Cancel(op.ID); err != nil {
		t.Fatal(err)
	}
	st, err := e.s.ops.Wait(context.Background(), op.ID)
	if err != nil || st.State != model.OperationCancelled {
		t.Fatalf("operation %v, %v", st.State, err)
	}
	e.assertNothingLeft(e.firstID())
}

func ptr[T any](v T) *T { return &v }

// TestSetValidates: out-of-range sizes and a shrinking work disk are
// refused as invalid, naming the flag and the bound, and change nothing.
func TestSetValidates(t *testing.T) {
	e := newEnv(t)
	req := e.req("sized")
	req.WorkDiskSizeBytes = 128 * mib
	req.NoStart = true
	if _, _, err := e.create(req); err != nil {
		t.Fatal(err)
	}
	before := e.vm("sized")
	tests := []struct {
		name string
		req  model.VMSetRequest
		text string
	}{
		{"no vcpus", model.VMSetRequest{VCPUCount: ptr(0)}, "--vcpus 0 is outside 1..32"},
		{"too many vcpus", model.VMSetRequest{VCPUCount: ptr(33)}, "--vcpus 33 is outside 1..32"},
		{"too little memory", model.VMSetRequest{MemoryMiB: ptr(64)}, "--memory 64M is too little: at least 128M"},
		{"too much memory", model.VMSetRequest{MemoryMiB: ptr(model.MaxMemoryMiB + 1)}, "is more than 1024G"},
		{"disk below minimum", model.VMSetRequest{WorkDiskSizeBytes: ptr[int64](32 * mib)}, "--disk 32M is too small for a work disk (at least 64M)"},
		{"disk shrinks", model.VMSetRequest{WorkDiskSizeBytes: ptr[int64](96 * mib)}, "--disk 96M is smaller than the work disk (128M); work disks only grow"},
		{"disk above maximum", model.VMSetRequest{WorkDiskSizeBytes: ptr(2 * model.MaxDiskBytes)}, "--disk 256G is more than 128G"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.IDOrName = "sized"
			_, err := e.s.Set(context.Background(), tt.req)
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("set: %v; want invalid argument saying %q", err, tt.text)
			}
			if got := e.vm("sized").Spec; got != before.Spec {
				t.Errorf("refused set changed the spec to %+v", got)
			}
		})
	}
}

// TestSetStopped: a stopped VM takes new vCPUs and memory, and NAT is
// only recorded (no VMM, no helper call); a work disk that cannot grow
// leaves the spec as it was.
func TestSetStopped(t *testing.T) {
	e := newEnv(t)
	e.mustCreate("quiet", false, true)
	det, err := e.s.Set(context.Background(), model.VMSetRequest{IDOrName: "quiet", VCPUCount: ptr(4), MemoryMiB: ptr(1024), NATEnabled: ptr(true)})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.vm("quiet").Spec; got != det.Spec || got.VCPUCount != 4 || got.MemoryMiB != 1024 || !got.NATEnabled {
		t.Errorf("spec %+v (returned %+v)", got, det.Spec)
	}
	if calls := e.helper.callLog(); slices.ContainsFunc(calls, func(c string) bool { return strings.Contains(c, "nat") }) {
		t.Errorf("NAT of a stopped VM reached the helper: %v", calls)
	}
	before := e.vm("quiet").Spec
	// The fake mkfs makes no file system, so growing it fails.
	if _, err := e.s.Set(context.Background(), model.VMSetRequest{IDOrName: "quiet", WorkDiskSizeBytes: ptr[int64](128 * mib)}); err == nil || !strings.Contains(err.Error(), "grow work disk") {
		t.Errorf("grow: %v", err)
	}
	if got := e.vm("quiet").Spec; got != before {
		t.Errorf("failed grow changed the spec to %+v", got)
	}
}

// TestSetRunning: vCPUs, memory and the work disk need a stopped VM;
// NAT changes live through the helper and is recorded in handles.json,
// so the stop releases it.
func TestSetRunning(t *testing.T) {
	e := newEnv(t)
	vm := e.mustCreate("live", false, false)
	ctx := context.Background()
	for _, req := range []model.VMSetRequest{{VCPUCount: ptr(2)}, {MemoryMiB: ptr(512)}, {WorkDiskSizeBytes: ptr[int64](128 * mib)}} {
		req.IDOrName = "live"
		_, err := e.s.Set(ctx, req)
		if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "vm live is running: stop it to change its vCPUs, memory or work disk") {
			t.Errorf("set %+v on a running VM: %v", req, err)
		}
	}
	if got := e.vm("live").Spec; got != vm.Spec {
		t.Errorf("refused sets changed the spec to %+v", got)
	}

	cause := errors.New("iptables busy")
	e.helper.set(func(h *fakeHelper) { h.enableErr = cause })
	if _, err := e.s.Set(ctx, model.VMSetRequest{IDOrName: "live", NATEnabled: ptr(true)}); !errors.Is(err, cause) {
		t.Errorf("set nat with a failing helper: %v", err)
	}
	if e.vm("live").Spec.NATEnabled {
		t.Error("NAT recorded on although the helper failed")
	}
	e.helper.set(func(h *fakeHelper) { h.enableErr = nil })

	if _, err := e.s.Set(ctx, model.VMSetRequest{IDOrName: "live", NATEnabled: ptr(true)}); err != nil {
		t.Fatalf("nat on: %v", err)
	}
	if h, _ := e.handles(vm); h.NATIP != vm.Runtime.GuestIP || !slices.Equal(e.helper.natOn(), []string{vm.Runtime.GuestIP}) || !e.vm("live").Spec.NATEnabled {
		t.Errorf("nat on: handles %+v, helper %v", h, e.helper.natOn())
	}
	if calls := e.helper.callLog(); !slices.Contains(calls, "enable-nat "+vm.Runtime.TapDevice+" "+vm.Runtime.GuestIP) {
		t.Errorf("helper calls %v", calls)
	}
	if _, err := e.s.Set(ctx, model.VMSetRequest{IDOrName: "live", NATEnabled: ptr(false)}); err != nil {
		t.Fatalf("nat off: %v", err)
	}
	if h, _ := e.handles(vm); h.NATIP != "" || len(e.helper.natOn()) != 0 || e.vm("live").Spec.NATEnabled {
		t.Errorf("nat off: handles %+v, helper %v", h, e.helper.natOn())
	}
	if _, err := e.s.Set(ctx, model.VMSetRequest{IDOrName: "live", NATEnabled: ptr(true)}); err != nil {
		t.Fatalf("nat on again: %v", err)
	}
	if _, err := e.s.Stop(ctx, api.VMStopParams{Name: "live", Force: true}); err != nil {
		t.Fatal(err)
	}
	e.assertReleased()
}
