package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"banger/internal/sshkey"
	"banger/internal/vmm"
)

// vmHandles are a running VM's live handles, kept in its directory as
// handles.json: the VMM process and everything its teardown must
// release. The VM's row mirrors the teardown fields (tap, loops, dm) as
// a fallback for when this file is missing or corrupt.
type vmHandles struct {
	VMM      vmm.Handle `json:"vmm"`
	Tap      string     `json:"tap,omitempty"`
	NATIP    string     `json:"nat_ip,omitempty"` // NAT enabled for this address
	BaseLoop string     `json:"base_loop,omitempty"`
	COWLoop  string     `json:"cow_loop,omitempty"`
	DMName   string     `json:"dm_name,omitempty"`
}

const handlesFile = "handles.json"

func writeHandles(vmDir string, h vmHandles) error {
	data, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return err
	}
	return sshkey.WriteFileAtomic(filepath.Join(vmDir, handlesFile), append(data, '\n'), 0o600)
}

// readHandles returns the VM's handles; ok is false when the file is
// missing or corrupt (the error says which).
func readHandles(vmDir string) (h vmHandles, ok bool, err error) {
	data, err := os.ReadFile(filepath.Join(vmDir, handlesFile))
	if errors.Is(err, os.ErrNotExist) {
		return vmHandles{}, false, nil
	}
	if err != nil {
		return vmHandles{}, false, err
	}
	if err := json.Unmarshal(data, &h); err != nil {
		return vmHandles{}, false, fmt.Errorf("%s is corrupt: %w", filepath.Join(vmDir, handlesFile), err)
	}
	return h, true, nil
}

func removeHandles(vmDir string) error {
	err := os.Remove(filepath.Join(vmDir, handlesFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
