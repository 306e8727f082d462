package vms

import (
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"banger/internal/errdefs"
	"banger/internal/model"
)

// TestCreateBootsAndRecordsEverything: a create with NAT takes a tap,
// enables NAT, attaches the dm-snapshot, starts the VMM and waits for
// the guest's SSH server; the row and handles.json record each of them.
func TestCreateBootsAndRecordsEverything(t *testing.T) {
	e := newEnv(t)
	vm := e.mustCreate("web", true, false)
	if vm.State != model.VMStateRunning || vm.Runtime.LastError != "" {
		t.Fatalf("state %q, last error %q", vm.State, vm.Runtime.LastError)
	}
	if vm.Runtime.GuestIP != "127.0.0.1" {
		t.Errorf("guest ip %s, want 127.0.0.1 (lowest host address besides the bridge's)", vm.Runtime.GuestIP)
	}
	h, ok := e.handles(vm)
	if !ok || h.VMM.PID == 0 || h.Tap == "" || h.Tap != vm.Runtime.TapDevice || h.NATIP != vm.Runtime.GuestIP || h.DMName == "" || h.DMName != vm.Runtime.DMName {
		t.Errorf("handles %+v (found %v) do not match row %+v", h, ok, vm.Runtime)
	}
	if got := e.taps.held(); !slices.Equal(got, []string{vm.Runtime.TapDevice}) {
		t.Errorf("taps held %v", got)
	}
	if got := e.helper.natOn(); !slices.Equal(got, []string{vm.Runtime.GuestIP}) {
		t.Errorf("NAT on for %v", got)
	}
	if got := e.helper.attached(); !slices.Equal(got, []string{vm.Runtime.DMName}) {
		t.Errorf("attached %v", got)
	}
	if e.drv.live() != 1 {
		t.Errorf("%d VMMs run", e.drv.live())
	}
	spec := e.drv.specs[0]
	if spec.RootDisk != vm.Runtime.DMDev || spec.Tap != vm.Runtime.TapDevice || spec.VCPUs != 1 || spec.MemoryMiB != 256 {
		t.Errorf("driver got %+v", spec)
	}
	if e.guest.loginCount() == 0 {
		t.Error("create did not wait for an SSH login")
	}
	if started, stopped := e.hooks.counts(vm.ID); started != 1 || stopped != 0 {
		t.Errorf("hooks: started %d, stopped %d; want 1, 0", started, stopped)
	}
}

// TestCreateNoStart makes the disks and stops there: no tap, no VMM,
// and the "in progress" mark is gone.
func TestCreateNoStart(t *testing.T) {
	e := newEnv(t)
	vm := e.mustCreate("idle", true, true)
	if vm.State != model.VMStateCreated || vm.Runtime.LastError != "" || vm.Runtime.TapDevice != "" {
		t.Errorf("state %q, last error %q, tap %q", vm.State, vm.Runtime.LastError, vm.Runtime.TapDevice)
	}
	e.assertReleased()
	if started, _ := e.hooks.counts(vm.ID); started != 0 {
		t.Errorf("Started fired %d times for a VM that never ran", started)
	}
}

// TestCreateRollback: whichever step fails, the create leaves nothing:
// no row, no directory, no tap, no NAT, no dm-snapshot, no VMM, no
// pinned key; the error wraps the cause, and the operation carries its
// code.
func TestCreateRollback(t *testing.T) {
	cause := errors.New("boom")
	tests := []struct {
		name  string
		setup func(t *testing.T, e *env)
		check func(t *testing.T, err error)
		// ran: the VMM ran, so Started fired (and Stopped must too).
		ran bool
	}{
		{name: "tap take fails", setup: func(_ *testing.T, e *env) { e.taps.takeErr = cause },
			check: wantCause(cause, "take a tap")},
		{name: "enable NAT fails", setup: func(_ *testing.T, e *env) { e.helper.set(func(h *fakeHelper) { h.enableErr = cause }) },
			check: wantCause(cause, "enable NAT")},
		{name: "dm-snapshot attach fails", setup: func(_ *testing.T, e *env) { e.helper.set(func(h *fakeHelper) { h.attachErr = cause }) },
			check: wantCause(cause, "system overlay (dm-snapshot)")},
		{name: "vmm start fails", setup: func(_ *testing.T, e *env) { e.drv.set(func(d *fakeDriver) { d.startErr = cause }) },
			check: wantCause(cause, "start fake")},
		{name: "vmm start fails, typed", setup: func(_ *testing.T, e *env) {
			e.drv.set(func(d *fakeDriver) { d.startErr = fmt.Errorf("no /dev/kvm: %w", errdefs.ErrUnavailable) })
		}, check: wantCause(errdefs.ErrUnavailable, "no /dev/kvm")},
		{name: "work disk fails", setup: func(t *testing.T, _ *env) { t.Setenv("FAKE_MKFS_FAIL", "mkfs.ext4: no space left on device") },
			check: func(t *testing.T, err error) {
				var ee *exec.ExitError
				if !errors.As(err, &ee) || !strings.Contains(err.Error(), "work disk") || !strings.Contains(err.Error(), "no space left") {
					t.Errorf("error %v: want the work disk's mkfs failure", err)
				}
			}},
		{name: "vmm exits while booting", ran: true, setup: func(_ *testing.T, e *env) {
			e.guestDown.Store(true)
			e.drv.set(func(d *fakeDriver) { d.lifetime = "0.3" })
		}, check: wantCause(nil, "the VMM exited while the guest booted", "console.log")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			tt.setup(t, e)
			_, op, err := e.create(withNAT(e.req("doomed")))
			if err == nil {
				t.Fatal("create succeeded")
			}
			tt.check(t, err)
			if op.State != model.OperationFailed || op.ErrorCode != string(errdefs.CodeOf(err)) {
				t.Errorf("operation %s, code %q; want failed, %q", op.State, op.ErrorCode, errdefs.CodeOf(err))
			}
			id := e.firstID()
			e.assertNothingLeft(id)
			started, stopped := e.hooks.counts(id)
			if want := map[bool]int{true: 1, false: 0}[tt.ran]; started != want || stopped != want {
				t.Errorf("hooks: started %d, stopped %d; want %d each", started, stopped, want)
			}
		})
	}
}

func withNAT(req CreateRequest) CreateRequest {
	req.NATEnabled = true
	return req
}

// wantCause checks that an error wraps cause (when set) and says each
// of texts.
func wantCause(cause error, texts ...string) func(t *testing.T, err error) {
	return func(t *testing.T, err error) {
		t.Helper()
		if cause != nil && !errors.Is(err, cause) {
			t.Errorf("error %v does not wrap %v", err, cause)
		}
		for _, s := range texts {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not say %q", err, s)
			}
		}
	}
}

// TestCreateRollbackReportsStoreFailure: when the clean-up cannot delete
// the row, the create's error says so (wrapping both the cause and the
// store's error), and the row is kept in the error state for `vm rm`,
// with everything else released.
func TestCreateRollbackReportsStoreFailure(t *testing.T) {
	e := newEnv(t)
	cause, storeErr := errors.New("nat boom"), errors.New("database is locked")
	e.helper.set(func(h *fakeHelper) { h.enableErr = cause })
	e.store.setFailDelete(storeErr)
	_, op, err := e.create(withNAT(e.req("stuck")))
	if !errors.Is(err, cause) || !errors.Is(err, storeErr) {
		t.Fatalf("error %v: want it to wrap both %v and %v", err, cause, storeErr)
	}
	if !strings.Contains(err.Error(), "banger vm rm stuck") || !strings.Contains(op.ErrorMessage, storeErr.Error()) {
		t.Errorf("error %q / operation message %q: want the store failure and what to do", err, op.ErrorMessage)
	}
	vm := e.vm("stuck")
	if vm.State != model.VMStateError || !strings.HasPrefix(vm.Runtime.LastError, createFailed) || !strings.Contains(vm.Runtime.LastError, storeErr.Error()) {
		t.Errorf("kept row: state %q, last error %q", vm.State, vm.Runtime.LastError)
	}
	e.assertReleased()
	if _, err := e.s.Start(t.Context(), "stuck"); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("start of a half-made VM: %v, want a conflict", err)
	}
	e.store.setFailDelete(nil)
	if _, err := e.s.Remove(t.Context(), removeParams("stuck", false)); err != nil {
		t.Fatalf("rm: %v", err)
	}
	e.assertNothingLeft(vm.ID)
}

// TestCreateRefusesBadRequests before anything is made.
func TestCreateRefusesBadRequests(t *testing.T) {
	e := newEnv(t)
	e.mustCreate("taken", false, true)
	before := len(e.store.allWrites())
	tests := []struct {
		name string
		edit func(r *CreateRequest)
		kind error
		text string
	}{
		{"vcpus", func(r *CreateRequest) { r.VCPUCount = 64 }, errdefs.ErrInvalidArgument, "--vcpus 64 is outside 1..32"},
		{"memory", func(r *CreateRequest) { r.MemoryMiB = 64 }, errdefs.ErrInvalidArgument, "--memory 64M is too little"},
		{"disk too small", func(r *CreateRequest) { r.WorkDiskSizeBytes = 8 * mib }, errdefs.ErrInvalidArgument, "--disk 8M is too small"},
		{"disk too big", func(r *CreateRequest) { r.WorkDiskSizeBytes = 2 * model.MaxDiskBytes }, errdefs.ErrInvalidArgument, "--disk 256G is more than 128G"},
		{"overlay too big", func(r *CreateRequest) { r.SystemOverlaySizeByte = 2 * model.MaxDiskBytes }, errdefs.ErrInvalidArgument, "--overlay-size 256G is more than 128G"},
		{"vmm", func(r *CreateRequest) { r.VMM = "bochs" }, errdefs.ErrInvalidArgument, `--vmm "bochs"`},
		{"image", func(r *CreateRequest) { r.ImageName = "arch" }, errdefs.ErrNotFound, `image "arch" does not exist`},
		{"name", func(r *CreateRequest) { r.Name = "taken" }, errdefs.ErrConflict, `vm "taken" exists already`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := e.req("fresh")
			tt.edit(&req)
			_, err := e.s.CreateBegin(t.Context(), req)
			if !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error %v: want %v saying %q", err, tt.kind, tt.text)
			}
		})
	}
	if after := len(e.store.allWrites()); after != before {
		t.Errorf("refused creates wrote %d rows", after-before)
	}
}
