package vms

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"banger/internal/errdefs"
	"banger/internal/model"
	"banger/internal/vmm"
	"banger/internal/vmm/firecracker"
	"banger/internal/vmm/qemu"
)

// TestDriverInstalled: a create naming a driver whose program is missing
// is refused before anything is made, saying what to do.
func TestDriverInstalled(t *testing.T) {
	s := &Service{drivers: Drivers{ByName: map[string]vmm.Driver{
		model.VMMQEMU:        &qemu.Driver{},
		model.VMMFirecracker: &firecracker.Driver{Binary: filepath.Join(t.TempDir(), "firecracker")},
	}}}
	s.layout.ConfigFile = "/home/me/.config/banger/config.toml"
	err := s.driverInstalled(model.VMMFirecracker)
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "vmm firecracker: find firecracker") || !strings.Contains(err.Error(), "set firecracker_bin in /home/me/.config/banger/config.toml, or use --vmm qemu") {
		t.Errorf("missing firecracker: %v", err)
	}
	if err := s.driverInstalled(model.VMMQEMU); err != nil {
		t.Errorf("qemu: %v", err)
	}
}
