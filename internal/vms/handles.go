package vms

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

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

// writeHandles records h as vmDir's handles.json (mode 0600).
//
// The file is replaced atomically (a temporary file renamed over it) but
// not fsynced: it must survive the daemon dying, which the page cache
// sees to, not the host, since nothing it names — processes, taps, loop
// and dm devices — outlives a host crash, and a missing or corrupt file
// falls back to the row. An fsync here also waited for whatever else
// the file system was writing back: with a copied overlay being flushed,
// each of a start's handle writes took up to ~0.6 s.
func writeHandles(vmDir string, h vmHandles) error {
	data, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(vmDir, handlesFile)
	tmp, err := os.CreateTemp(vmDir, "."+handlesFile+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
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
