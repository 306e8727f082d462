package drivers

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"banger/internal/model"
	"banger/internal/vmm/firecracker"
	"banger/internal/vmm/qemu"
)

// TestAutoDriver: auto means firecracker only with its binary found and
// a KVM that runs ordinary guests; qemu otherwise.
func TestAutoDriver(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "firecracker")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	kvm := qemu.AccelDecision{Accel: qemu.AccelKVM}
	tcg := qemu.AccelDecision{Accel: qemu.AccelTCG}
	missing := &firecracker.Driver{Binary: filepath.Join(t.TempDir(), "nope")}
	found := &firecracker.Driver{Binary: bin}
	for _, tc := range []struct {
		fc    *firecracker.Driver
		accel qemu.AccelDecision
		want  string
	}{
		{found, kvm, model.VMMFirecracker},
		{found, tcg, model.VMMQEMU},
		{missing, kvm, model.VMMQEMU},
		{missing, tcg, model.VMMQEMU},
	} {
		if got, reason := autoDriver(tc.fc, tc.accel); got != tc.want || reason == "" {
			t.Errorf("autoDriver(%s, %s) = %s, want %s", tc.fc.Binary, tc.accel.Accel, got, tc.want)
		}
	}
}

// TestNew: both drivers, under the names VM records carry, and an auto
// choice among them.
func TestNew(t *testing.T) {
	s := New(model.DaemonConfig{FirecrackerBin: filepath.Join(t.TempDir(), "nope")})
	if got := s.Names(); !slices.Equal(got, []string{model.VMMFirecracker, model.VMMQEMU}) {
		t.Errorf("names %q", got)
	}
	if s.Auto != model.VMMQEMU || s.AutoReason == "" || s.QEMU == nil || s.ByName[model.VMMQEMU] != s.QEMU {
		t.Errorf("set %+v: want qemu as auto (no firecracker), with a reason", s)
	}
}
