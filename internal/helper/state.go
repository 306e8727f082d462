package helper

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// state is the helper's record of what it made for whom, persisted after
// every change. Records are written before the thing they describe is
// created (Ready false), so a crash at any point leaves a record of
// everything that might exist; reconcile then makes the host match.
type state struct {
	Taps map[string]*tapRecord `json:"taps"`
	NAT  map[string]*natRecord `json:"nat"` // by guest IP
	// Overlays are dm-snapshots, by device-mapper name.
	Overlays map[string]*overlayRecord `json:"overlays"`
}

type tapRecord struct {
	Name      string    `json:"name"`
	UID       uint32    `json:"uid"`
	Ready     bool      `json:"ready"`
	CreatedAt time.Time `json:"created_at"`
}

type natRecord struct {
	GuestIP string `json:"guest_ip"`
	Tap     string `json:"tap"`
	UID     uint32 `json:"uid"`
	Bridge  string `json:"bridge"`
	Uplink  string `json:"uplink"`
	Ready   bool   `json:"ready"`
}

func newState() *state {
	return &state{Taps: map[string]*tapRecord{}, NAT: map[string]*natRecord{}, Overlays: map[string]*overlayRecord{}}
}

// loadState reads the records; a missing file is an empty state. A
// corrupt one is reported so reconcile can say what it did about it.
func loadState(path string) (*state, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return newState(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state %s: %w", path, err)
	}
	st := newState()
	if err := json.Unmarshal(data, st); err != nil {
		return newState(), fmt.Errorf("state %s is corrupt: %w", path, err)
	}
	if st.Taps == nil {
		st.Taps = map[string]*tapRecord{}
	}
	if st.NAT == nil {
		st.NAT = map[string]*natRecord{}
	}
	if st.Overlays == nil {
		st.Overlays = map[string]*overlayRecord{}
	}
	return st, nil
}

// save replaces the state file atomically: temp file, fsync, rename.
func (s *state) save(path string) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".helper-state-*")
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("save state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

func (s *state) tapsOf(uid uint32) []*tapRecord {
	var out []*tapRecord
	for _, t := range s.Taps {
		if t.UID == uid && t.Ready {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return tapIndex(out[i].Name) < tapIndex(out[j].Name) })
	return out
}

func (s *state) natOf(uid uint32) []*natRecord {
	var out []*natRecord
	for _, n := range s.NAT {
		if n.UID == uid && n.Ready {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GuestIP < out[j].GuestIP })
	return out
}

func (s *state) natBehind(tap string) []*natRecord {
	var out []*natRecord
	for _, n := range s.NAT {
		if n.Tap == tap {
			out = append(out, n)
		}
	}
	return out
}
