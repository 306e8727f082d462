package helper

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"banger/internal/errdefs"
	"banger/internal/helperapi"
)

// maxTapIndex keeps tap names at most 10 characters (bgtap99999).
const maxTapIndex = 99999

// tapName is the name of the helper's tap number i.
func tapName(i int) string { return helperapi.TapPrefix + strconv.Itoa(i) }

// tapIndex returns the index in a tap name, or -1 when name is not one
// the helper would ever make.
func tapIndex(name string) int {
	digits, ok := strings.CutPrefix(name, helperapi.TapPrefix)
	if !ok || digits == "" || len(digits) > 5 || (len(digits) > 1 && digits[0] == '0') {
		return -1
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return -1
		}
	}
	i, err := strconv.Atoi(digits)
	if err != nil || i > maxTapIndex {
		return -1
	}
	return i
}

// checkTapName refuses anything but a name of the helper's own form, so
// that no request can make it touch lo, eth0, or a name with odd
// characters.
func checkTapName(name string) error {
	if tapIndex(name) < 0 {
		return fmt.Errorf("%q is not a banger tap name (%sN): %w", name, helperapi.TapPrefix, errdefs.ErrInvalidArgument)
	}
	return nil
}

// checkGuestIP accepts an IPv4 host address inside the bridge's network
// that is not the bridge's own.
func checkGuestIP(raw string, bridge netip.Prefix) (netip.Addr, error) {
	addr, err := netip.ParseAddr(raw)
	if err != nil || !addr.Is4() || addr.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("guest ip %q is not an IPv4 address: %w", raw, errdefs.ErrInvalidArgument)
	}
	network := bridge.Masked()
	if !network.Contains(addr) {
		return netip.Addr{}, fmt.Errorf("guest ip %s is outside the bridge network %s: %w", addr, network, errdefs.ErrInvalidArgument)
	}
	if addr == bridge.Addr() || addr == network.Addr() || addr == helperapi.Broadcast(network) {
		return netip.Addr{}, fmt.Errorf("guest ip %s is the bridge, network or broadcast address of %s: %w", addr, network, errdefs.ErrInvalidArgument)
	}
	return addr, nil
}
