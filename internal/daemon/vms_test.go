package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"banger/internal/errdefs"
	"banger/internal/model"
	"banger/internal/vmm"
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

// TestDriverInstalled: a create naming a driver whose program is missing
// is refused before anything is made, saying what to do.
func TestDriverInstalled(t *testing.T) {
	d := &Daemon{drivers: map[string]vmm.Driver{
		model.VMMQEMU:        &qemu.Driver{},
		model.VMMFirecracker: &firecracker.Driver{Binary: filepath.Join(t.TempDir(), "firecracker")},
	}}
	d.layout.ConfigFile = "/home/me/.config/banger/config.toml"
	err := d.driverInstalled(model.VMMFirecracker)
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "vmm firecracker: find firecracker") || !strings.Contains(err.Error(), "set firecracker_bin in /home/me/.config/banger/config.toml, or use --vmm qemu") {
		t.Errorf("missing firecracker: %v", err)
	}
	if err := d.driverInstalled(model.VMMQEMU); err != nil {
		t.Errorf("qemu: %v", err)
	}
}
