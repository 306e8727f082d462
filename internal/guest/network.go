package guest

import (
	"fmt"
	"net"
	"slices"

	"github.com/vishvananda/netlink"

	"banger/internal/guestapi"
)

// guestInterface is the name banger's one virtio-net interface has in a
// Debian guest without udev renaming (and under Firecracker).
const guestInterface = "eth0"

// linkInfo is what chooseInterface needs to know about a network link.
type linkInfo struct {
	Index int
	Name  string
	Type  string // netlink's link type: "device" for a NIC, "veth", "bridge", ...
	Encap string // "ether", "loopback", ...
}

// chooseInterface picks the guest's NIC: eth0 if there is one, else the
// lowest-numbered ethernet device that is not a virtual link of some
// other kind (an image with predictable interface names calls it enp0s2
// or similar).
func chooseInterface(links []linkInfo) (string, error) {
	for _, l := range links {
		if l.Name == guestInterface {
			return l.Name, nil
		}
	}
	links = slices.Clone(links)
	slices.SortFunc(links, func(a, b linkInfo) int { return a.Index - b.Index })
	for _, l := range links {
		if l.Encap == "ether" && l.Type == "device" {
			return l.Name, nil
		}
	}
	names := make([]string, len(links))
	for i, l := range links {
		names[i] = l.Name
	}
	return "", fmt.Errorf("no ethernet interface (links: %v; is virtio_net loaded?)", names)
}

// configureNetwork brings up lo, gives the guest's NIC the address in c
// and brings it up, and routes the default route through c.Gateway when
// set. Each change is a replace, so a second run is a no-op. It returns
// the NIC's name.
func configureNetwork(h *netlink.Handle, c guestapi.Config) (string, error) {
	lo, err := h.LinkByName("lo")
	if err != nil {
		return "", fmt.Errorf("find lo: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return "", fmt.Errorf("bring up lo: %w", err)
	}

	links, err := h.LinkList()
	if err != nil {
		return "", fmt.Errorf("list links: %w", err)
	}
	infos := make([]linkInfo, len(links))
	for i, l := range links {
		a := l.Attrs()
		infos[i] = linkInfo{Index: a.Index, Name: a.Name, Type: l.Type(), Encap: a.EncapType}
	}
	name, err := chooseInterface(infos)
	if err != nil {
		return "", err
	}
	link := links[slices.IndexFunc(infos, func(l linkInfo) bool { return l.Name == name })]

	addr := &netlink.Addr{IPNet: &net.IPNet{
		IP:   c.Address.Addr().AsSlice(),
		Mask: net.CIDRMask(c.Address.Bits(), 32),
	}}
	if err := h.AddrReplace(link, addr); err != nil {
		return name, fmt.Errorf("address %s on %s: %w", c.Address, name, err)
	}
	// Up before the route: the kernel refuses a gateway it cannot reach
	// through an up link.
	if err := h.LinkSetUp(link); err != nil {
		return name, fmt.Errorf("bring up %s: %w", name, err)
	}
	if c.Gateway.IsValid() {
		route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: c.Gateway.AsSlice(), Scope: netlink.SCOPE_UNIVERSE}
		if err := h.RouteReplace(route); err != nil {
			return name, fmt.Errorf("default route via %s on %s: %w", c.Gateway, name, err)
		}
	}
	return name, nil
}
