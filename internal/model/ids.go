package model

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// Now is the timestamp banger stores: UTC, truncated to the second, so a
// value read back from the store compares equal to the one written.
func Now() time.Time {
	return time.Now().UTC().Truncate(time.Second)
}

// NewID returns a random 256-bit identifier as 64 hex characters, used
// for VM and image ids. Users address objects by name or id prefix.
func NewID() (string, error) {
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	return hex.EncodeToString(buf), nil
}

// NewOpID returns a short identifier for tracing a single RPC operation
// across the daemon, the root helper, and the user-visible CLI error
// string. Format: "op-" + 12 hex chars (48 bits of entropy — collisions
// inside one daemon session are vanishingly unlikely and don't matter
// beyond it). Short enough to copy from a CLI error into a
// `journalctl --grep`, long enough to disambiguate.
func NewOpID() (string, error) {
	buf := make([]byte, 6)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	return "op-" + hex.EncodeToString(buf), nil
}
