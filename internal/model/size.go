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

// ParseSize reads a disk or memory size as users write it: a whole
// number with an optional K, M or G suffix (case-insensitive, powers of
// 1024). A bare number means MiB. Empty, non-positive and
// over-MaxDiskBytes values are errors. An error says what is wrong with
// raw without repeating it, for the caller to name the flag or key and
// the value, and to add SizeSyntax.
func ParseSize(raw string) (int64, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return 0, errors.New("no size given")
	}
	multiplier := mib
	number := raw
	switch unit := raw[len(raw)-1]; unit {
	case 'K', 'k':
		multiplier, number = kib, raw[:len(raw)-1]
	case 'M', 'm':
		multiplier, number = mib, raw[:len(raw)-1]
	case 'G', 'g':
		multiplier, number = gib, raw[:len(raw)-1]
	default:
		if unit < '0' || unit > '9' {
			if !hasDigit(raw) {
				return 0, errors.New("not a size")
			}
			return 0, fmt.Errorf("unit %q is not K, M or G", string(unit))
		}
	}
	value, err := strconv.ParseInt(number, 10, 64)
	tooMuch := fmt.Errorf("more than the maximum, %s", FormatSizeBytes(MaxDiskBytes))
	switch {
	case number == "":
		return 0, errors.New("no number before the unit")
	case errors.Is(err, strconv.ErrRange) && !strings.HasPrefix(number, "-"):
		return 0, tooMuch
	case errors.Is(err, strconv.ErrRange):
		return 0, errors.New("not more than 0")
	case err != nil && !hasDigit(number):
		return 0, errors.New("not a size")
	case err != nil:
		return 0, fmt.Errorf("%q is not a whole number", number)
	case value <= 0:
		return 0, errors.New("not more than 0")
	}
	// Compare before multiplying: value*multiplier can overflow int64
	// and wrap to a small positive number that would pass the cap.
	if value > MaxDiskBytes/multiplier {
		return 0, tooMuch
	}
	return value * multiplier, nil
}

func hasDigit(s string) bool { return strings.ContainsAny(s, "0123456789") }

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
const SizeSyntax = "a whole number with K, M or G, e.g. 1536M or 8G (a bare number is MiB)"

// SizeError is a size that ParseSize refused, as a flag or a config key
// named it: what named it, the value, why, and what is accepted.
func SizeError(what, raw string, err error) error {
	return fmt.Errorf("%s %q: %v; use %s", what, raw, err, SizeSyntax)
}

// ParseMemoryMiB reads a memory size as ParseSize does (a bare number is
// MiB) and returns whole MiB.
func ParseMemoryMiB(raw string) (int, error) {
	n, err := ParseSize(raw)
	if err != nil {
		return 0, err
	}
	if n%mib != 0 {
		return 0, errors.New("not a whole number of MiB")
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

// HumanBytes writes a size for people to read, to one decimal in the
// largest binary unit under it: "512 B", "1.5 KiB", "301.2 MiB".
func HumanBytes(n int64) string {
	const units = "KMGTPE"
	if n < kib && n > -kib {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/1024, 0
	for (v >= 1024 || v <= -1024) && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, units[i])
}
