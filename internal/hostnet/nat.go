package hostnet

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/coreos/go-iptables/iptables"
	"github.com/vishvananda/netlink"
)

// banger's own chains. Its rules live only here, reached by one jump at
// the top of FORWARD and of POSTROUTING, so that removing them is exact
// and an ACCEPT here ends the FORWARD chain before its policy — which is
// what makes NAT work when another tool (Docker) set that policy to DROP.
// A separate nftables table could not do this: a drop in another table's
// forward chain would still drop the packet.
const (
	ForwardChain     = "BANGER-FORWARD"
	PostroutingChain = "BANGER-POSTROUTING"
	rulePrefix       = "banger:"
)

// Firewall manages banger's iptables chains.
type Firewall struct {
	ipt *iptables.IPTables
}

// NewFirewall finds iptables (IPv4).
func NewFirewall() (*Firewall, error) {
	ipt, err := iptables.New(iptables.IPFamily(iptables.ProtocolIPv4))
	if err != nil {
		return nil, fmt.Errorf("iptables: %w", err)
	}
	return &Firewall{ipt: ipt}, nil
}

// NATRule is one guest IP's masquerade and forward rules.
type NATRule struct {
	GuestIP netip.Addr
	Bridge  string
	Uplink  string
}

func (r NATRule) comment() string { return rulePrefix + "nat:" + r.GuestIP.String() }

func (r NATRule) specs() []ruleSpec {
	ip := r.GuestIP.String() + "/32"
	c := []string{"-m", "comment", "--comment", r.comment()}
	return []ruleSpec{
		{"filter", ForwardChain, append([]string{"-i", r.Bridge, "-o", r.Uplink, "-s", ip}, append(c, "-j", "ACCEPT")...)},
		{"filter", ForwardChain, append([]string{"-i", r.Uplink, "-o", r.Bridge, "-d", ip, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED"}, append(c, "-j", "ACCEPT")...)},
		{"nat", PostroutingChain, append([]string{"-s", ip, "-o", r.Uplink}, append(c, "-j", "MASQUERADE")...)},
	}
}

type ruleSpec struct {
	table, chain string
	args         []string
}

// bridgeRule lets guests on the bridge reach each other even when bridged
// traffic passes through iptables (br_netfilter) and FORWARD drops.
func bridgeRule(bridge string) ruleSpec {
	return ruleSpec{"filter", ForwardChain, []string{"-i", bridge, "-o", bridge, "-m", "comment", "--comment", rulePrefix + "bridge", "-j", "ACCEPT"}}
}

// EnsureChains creates banger's chains and their jumps if missing, and
// the rule that lets guests on bridge talk to each other.
func (f *Firewall) EnsureChains(bridge string) error {
	for _, c := range []struct{ table, chain, parent string }{
		{"filter", ForwardChain, "FORWARD"},
		{"nat", PostroutingChain, "POSTROUTING"},
	} {
		exists, err := f.ipt.ChainExists(c.table, c.chain)
		if err != nil {
			return fmt.Errorf("iptables: look up %s/%s: %w", c.table, c.chain, err)
		}
		if !exists {
			if err := f.ipt.NewChain(c.table, c.chain); err != nil {
				return fmt.Errorf("iptables: create %s/%s: %w", c.table, c.chain, err)
			}
		}
		if err := f.ipt.InsertUnique(c.table, c.parent, 1, "-j", c.chain); err != nil {
			return fmt.Errorf("iptables: jump from %s/%s to %s: %w", c.table, c.parent, c.chain, err)
		}
	}
	r := bridgeRule(bridge)
	if err := f.ipt.AppendUnique(r.table, r.chain, r.args...); err != nil {
		return fmt.Errorf("iptables: bridge rule: %w", err)
	}
	return nil
}

// AddNAT adds the rules of r (idempotent).
func (f *Firewall) AddNAT(r NATRule) error {
	for _, s := range r.specs() {
		if err := f.ipt.AppendUnique(s.table, s.chain, s.args...); err != nil {
			return fmt.Errorf("iptables: add NAT for %s: %w", r.GuestIP, err)
		}
	}
	return nil
}

// RemoveNAT removes exactly the rules AddNAT added for r; missing ones
// are fine.
func (f *Firewall) RemoveNAT(r NATRule) error {
	for _, s := range r.specs() {
		if err := f.ipt.DeleteIfExists(s.table, s.chain, s.args...); err != nil {
			return fmt.Errorf("iptables: remove NAT for %s: %w", r.GuestIP, err)
		}
	}
	return nil
}

// Reset empties banger's chains and puts back the bridge rule and the
// rules of nat: after it, the firewall holds exactly what the records
// say, whatever a crash left behind.
func (f *Firewall) Reset(bridge string, nat []NATRule) error {
	if err := f.EnsureChains(bridge); err != nil {
		return err
	}
	for _, c := range []struct{ table, chain string }{{"filter", ForwardChain}, {"nat", PostroutingChain}} {
		if err := f.ipt.ClearChain(c.table, c.chain); err != nil {
			return fmt.Errorf("iptables: clear %s/%s: %w", c.table, c.chain, err)
		}
	}
	r := bridgeRule(bridge)
	if err := f.ipt.Append(r.table, r.chain, r.args...); err != nil {
		return fmt.Errorf("iptables: bridge rule: %w", err)
	}
	for _, n := range nat {
		if err := f.AddNAT(n); err != nil {
			return err
		}
	}
	return nil
}

// ChainsExist reports whether banger's chains are present.
func (f *Firewall) ChainsExist() (bool, error) {
	for _, c := range []struct{ table, chain string }{{"filter", ForwardChain}, {"nat", PostroutingChain}} {
		ok, err := f.ipt.ChainExists(c.table, c.chain)
		if err != nil {
			return false, fmt.Errorf("iptables: look up %s/%s: %w", c.table, c.chain, err)
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// Rules lists the rules in banger's chains, for tests and diagnostics.
func (f *Firewall) Rules() ([]string, error) {
	var out []string
	for _, c := range []struct{ table, chain string }{{"filter", ForwardChain}, {"nat", PostroutingChain}} {
		rules, err := f.ipt.List(c.table, c.chain)
		if err != nil {
			return nil, fmt.Errorf("iptables: list %s/%s: %w", c.table, c.chain, err)
		}
		for _, r := range rules {
			if strings.HasPrefix(r, "-A ") {
				out = append(out, c.table+" "+r)
			}
		}
	}
	return out, nil
}

// DefaultRouteInterface returns the interface of the IPv4 default route:
// where masqueraded guest traffic leaves the host.
func DefaultRouteInterface() (string, error) {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return "", fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst != nil {
			if ones, _ := r.Dst.Mask.Size(); ones != 0 {
				continue
			}
		}
		if r.LinkIndex == 0 {
			continue
		}
		link, err := netlink.LinkByIndex(r.LinkIndex)
		if err != nil {
			return "", fmt.Errorf("default route interface: %w", err)
		}
		return link.Attrs().Name, nil
	}
	return "", ErrNoDefaultRoute
}

// ErrNoDefaultRoute: NAT has no uplink to masquerade out of.
var ErrNoDefaultRoute = errors.New("the host has no IPv4 default route, so there is nowhere to send NAT traffic")
