// Package hostnet changes the host's network: the banger bridge, taps
// owned by a user, and the iptables rules that NAT one guest IP. It runs
// as root inside banger-helper and nowhere else (internal/deptest keeps
// it so). It validates nothing about who asks: the helper decides that
// and calls in only with names and addresses it has checked.
package hostnet

import (
	"errors"
	"fmt"
	"os"

	"github.com/vishvananda/netlink"
)

// ErrNotFound is returned when a named link does not exist.
var ErrNotFound = errors.New("link not found")

// LinkExists reports whether an interface with this name exists.
func LinkExists(name string) (bool, error) {
	_, err := netlink.LinkByName(name)
	if err == nil {
		return true, nil
	}
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return false, nil
	}
	return false, fmt.Errorf("look up link %s: %w", name, err)
}

// DeleteLink deletes the interface name; one already gone is ErrNotFound.
func DeleteLink(name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return fmt.Errorf("delete %s: %w", name, ErrNotFound)
		}
		return fmt.Errorf("look up link %s: %w", name, err)
	}
	if err := netlink.LinkDel(link); err != nil {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

// Link is an interface as the helper's reconcile sees it.
type Link struct {
	Name  string
	Alias string
	Index int
}

// Links lists every interface of the network namespace.
func Links() ([]Link, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	out := make([]Link, 0, len(links))
	for _, l := range links {
		a := l.Attrs()
		out = append(out, Link{Name: a.Name, Alias: a.Alias, Index: a.Index})
	}
	return out, nil
}

// EnableIPv4Forwarding turns on net.ipv4.ip_forward, which NAT needs. It
// never turns it off: other software on the host may rely on it.
func EnableIPv4Forwarding() error {
	const path = "/proc/sys/net/ipv4/ip_forward"
	cur, err := os.ReadFile(path)
	if err == nil && len(cur) > 0 && cur[0] == '1' {
		return nil
	}
	if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("enable ip_forward: %w", err)
	}
	return nil
}
