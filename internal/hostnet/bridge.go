package hostnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// BridgeState is what the host has under the bridge's name.
type BridgeState struct {
	Exists bool
	Up     bool
	// HasAddress says whether the configured address is on it.
	HasAddress bool
}

// InspectBridge reports the state of bridge name and whether addr is
// assigned to it.
func InspectBridge(name string, addr netip.Prefix) (BridgeState, error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return BridgeState{}, nil
		}
		return BridgeState{}, fmt.Errorf("look up bridge %s: %w", name, err)
	}
	if _, ok := link.(*netlink.Bridge); !ok {
		return BridgeState{}, fmt.Errorf("%s exists and is a %s, not a bridge", name, link.Type())
	}
	st := BridgeState{Exists: true, Up: link.Attrs().Flags&net.FlagUp != 0}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return st, fmt.Errorf("list addresses of %s: %w", name, err)
	}
	for _, a := range addrs {
		if ones, _ := a.Mask.Size(); a.IP.Equal(net.IP(addr.Addr().AsSlice())) && ones == addr.Bits() {
			st.HasAddress = true
		}
	}
	return st, nil
}

// EnsureBridge creates bridge name if it does not exist, assigns addr to
// it if missing, and brings it up. created says whether it made the
// bridge. An existing interface of that name that is not a bridge is an
// error: it is never taken over.
func EnsureBridge(name string, addr netip.Prefix) (created bool, err error) {
	st, err := InspectBridge(name, addr)
	if err != nil {
		return false, err
	}
	if !st.Exists {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
		if err := netlink.LinkAdd(br); err != nil && !errors.Is(err, unix.EEXIST) {
			return false, fmt.Errorf("create bridge %s: %w", name, err)
		}
		created = true
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		return created, fmt.Errorf("look up bridge %s: %w", name, err)
	}
	if !st.HasAddress {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(addr.Addr().AsSlice()), Mask: net.CIDRMask(addr.Bits(), 32)}}
		if err := netlink.AddrAdd(link, a); err != nil && !errors.Is(err, unix.EEXIST) {
			return created, fmt.Errorf("add %s to bridge %s: %w", addr, name, err)
		}
	}
	if !st.Up {
		if err := netlink.LinkSetUp(link); err != nil {
			return created, fmt.Errorf("bring bridge %s up: %w", name, err)
		}
	}
	return created, nil
}
