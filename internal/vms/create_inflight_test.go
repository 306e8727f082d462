package vms

import (
	"strings"
	"testing"

	"banger/internal/model"
)

// TestCreateMarkedInFlightUntilSSH: while a create waits for its guest's
// SSH server the VM runs, but its row still says "create in progress",
// so a daemon dying then leaves a VM recovery tears down (as at every
// other stage of a create) rather than adopts; once the guest answers,
// the mark is gone.
func TestCreateMarkedInFlightUntilSSH(t *testing.T) {
	e := newEnv(t)
	e.guestDown.Store(true)
	done := make(chan error, 1)
	go func() {
		_, _, err := e.create(e.req("booting"))
		done <- err
	}()
	var row model.VMRecord
	waitFor(t, "the VMM to run", func() bool {
		vm, err := e.store.FindVM(t.Context(), "booting")
		row = vm
		return err == nil && vm.State == model.VMStateRunning
	})
	if !isCreateInFlight(row) {
		t.Errorf("running, waiting for SSH, last error %q: not marked as a create in progress", row.Runtime.LastError)
	}
	e.guestDown.Store(false)
	if err := <-done; err != nil {
		t.Fatalf("create: %v", err)
	}
	if row := e.vm("booting"); row.State != model.VMStateRunning || row.Runtime.LastError != "" {
		t.Errorf("after the create: %q, last error %q", row.State, row.Runtime.LastError)
	}
	if strings.Contains(e.vm("booting").Runtime.LastError, createInFlight) {
		t.Error("still marked in progress")
	}
}
