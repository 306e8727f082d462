package model

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

const (
	kib int64 = 1024
	mib       = 1024 * kib
	gib       = 1024 * mib
)

// ParseSize reads a disk or memory size as users write it: a number with
// an optional K, M or G suffix (case-insensitive, powers of 1024). A bare
// number means MiB. Empty, non-positive and over-MaxDiskBytes values are
// errors.
func ParseSize(raw string) (int64, error) {
	if raw == "" {
		return 0, errors.New("size is required")
	}
	raw = strings.TrimSpace(strings.ToUpper(raw))
	if raw == "" {
		return 0, errors.New("size is required")
	}
	multiplier := mib
	number := raw
	switch unit := raw[len(raw)-1]; unit {
	case 'K':
		multiplier, number = kib, raw[:len(raw)-1]
	case 'M':
		multiplier, number = mib, raw[:len(raw)-1]
	case 'G':
		multiplier, number = gib, raw[:len(raw)-1]
	default:
		if unit < '0' || unit > '9' {
			return 0, fmt.Errorf("unsupported size suffix: %q", string(unit))
		}
	}
	value, err := strconv.ParseInt(number, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse size %q: %q is not a whole number", raw, number)
	}
	if value <= 0 {
		return 0, fmt.Errorf("size must be positive: %q", raw)
	}
	// Compare before multiplying: value*multiplier can overflow int64
	// and wrap to a small positive number that would pass the cap.
	if value > MaxDiskBytes/multiplier {
		return 0, fmt.Errorf("size exceeds max of %d bytes", MaxDiskBytes)
	}
	return value * multiplier, nil
}

// FormatSizeBytes writes bytes in the largest K/M/G unit that divides it
// exactly, so ParseSize(FormatSizeBytes(n)) == n for every n ParseSize
// accepts.
func FormatSizeBytes(bytes int64) string {
	switch {
	case bytes%gib == 0:
		return fmt.Sprintf("%dG", bytes/gib)
	case bytes%mib == 0:
		return fmt.Sprintf("%dM", bytes/mib)
	case bytes%kib == 0:
		return fmt.Sprintf("%dK", bytes/kib)
	default:
		return strconv.FormatInt(bytes, 10)
	}
}

// Bounds on what a VM may be given. Config, create and set check
// against these, so the three agree.
const (
	MinVCPUCount         = 1
	MaxVCPUCount         = 32
	MinMemoryMiB         = 128 // a Debian guest with systemd needs that
	MaxMemoryMiB         = 1024 * 1024
	MinWorkDiskSizeBytes = 64 * mib
)

// SizeSyntax is what a size error tells the user is accepted.
const SizeSyntax = "a whole number with an optional K, M or G suffix, e.g. 512M, 8G or 1536M (a bare number is MiB)"

// ParseMemoryMiB reads a memory size as ParseSize does (a bare number is
// MiB) and returns whole MiB.
func ParseMemoryMiB(raw string) (int, error) {
	n, err := ParseSize(raw)
	if err != nil {
		return 0, err
	}
	if n%mib != 0 {
		return 0, errors.New("memory must be a whole number of MiB, e.g. 1536M")
	}
	return int(n / mib), nil
}

// CheckVCPUCount checks an explicit vCPU count.
func CheckVCPUCount(n int) error {
	if n < MinVCPUCount || n > MaxVCPUCount {
		return fmt.Errorf("%d is outside %d..%d", n, MinVCPUCount, MaxVCPUCount)
	}
	return nil
}

// CheckMemoryMiB checks an explicit memory size.
func CheckMemoryMiB(n int) error {
	switch {
	case n < MinMemoryMiB:
		return fmt.Errorf("%s is too little: at least %dM (a Debian guest with systemd needs that)", FormatSizeBytes(int64(n)*mib), MinMemoryMiB)
	case n > MaxMemoryMiB:
		return fmt.Errorf("%s is more than %s", FormatSizeBytes(int64(n)*mib), FormatSizeBytes(MaxMemoryMiB*mib))
	}
	return nil
}
