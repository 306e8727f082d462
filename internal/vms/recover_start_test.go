package vms

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"banger/internal/model"
)

// TestRecoverInterruptedStart: a start cut off by the daemon's death
// after it took a tap and NAT — and, in the second case, after it
// started the VMM but before the row said running — leaves a VM recorded
// created that holds them. Recovery kills the VMM, releases the tap, NAT
// and dm-snapshot, removes handles.json, and keeps the VM created with
// the reason, startable again. (Left alone, a later start would take a
// new tap over the recorded one and leak it and its NAT rule for good.)
func TestRecoverInterruptedStart(t *testing.T) {
	for _, vmmRuns := range []bool{false, true} {
		name := map[bool]string{false: "tap and NAT taken", true: "VMM started"}[vmmRuns]
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			vm, h := e.leaveRunning("cut", true)
			if !vmmRuns {
				e.drv.end(h.VMM.PID)
				if err := writeHandles(vm.Runtime.VMDir, vmHandles{Tap: h.Tap, NATIP: h.NATIP, DMName: h.DMName}); err != nil {
					t.Fatal(err)
				}
			}
			vm.State = model.VMStateCreated
			e.store.put(vm)
			e.restart()
			e.s.Recover(context.Background())
			row := e.vm(vm.ID)
			if row.State != model.VMStateCreated || !strings.HasPrefix(row.Runtime.LastError, "its start was interrupted") {
				t.Errorf("after recover: %q, %q", row.State, row.Runtime.LastError)
			}
			if row.Runtime.TapDevice != "" || row.Runtime.DMName != "" {
				t.Errorf("the row still names tap %q, dm %q", row.Runtime.TapDevice, row.Runtime.DMName)
			}
			if _, err := os.Stat(filepath.Join(vm.Runtime.VMDir, handlesFile)); !os.IsNotExist(err) {
				t.Errorf("handles.json left (%v)", err)
			}
			e.assertReleased()
			if err := startable(row); err != nil {
				t.Errorf("not startable after recovery: %v", err)
			}
		})
	}
}
