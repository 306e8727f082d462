package daemon

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"net/netip"
	"strconv"
	"strings"

	"banger/internal/errdefs"
	"banger/internal/model"
)

// Words for generated VM names: adjective-noun, as short DNS labels.
var (
	nameAdjectives = []string{"amber", "brave", "calm", "deft", "eager", "fleet", "gentle", "hardy", "keen", "lucid", "mellow", "nimble", "plucky", "quiet", "rapid", "sunny", "tidy", "vivid", "witty", "zesty"}
	nameNouns      = []string{"badger", "cedar", "dingo", "egret", "falcon", "gecko", "heron", "ibis", "jackal", "koala", "lemur", "marten", "newt", "otter", "puffin", "quokka", "raven", "stoat", "tapir", "wombat"}
)

// generateName picks an adjective-noun name no VM has.
func generateName(taken map[string]bool) (string, error) {
	for i := 0; i < 100; i++ {
		a, _ := rand.Int(rand.Reader, big.NewInt(int64(len(nameAdjectives))))
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(nameNouns))))
		name := nameAdjectives[a.Int64()] + "-" + nameNouns[n.Int64()]
		if i >= 20 {
			name += "-" + strconv.Itoa(i)
		}
		if !taken[name] {
			return name, nil
		}
	}
	return "", fmt.Errorf("no free generated name; pass --name: %w", errdefs.ErrConflict)
}

// bridgePrefix is the bridge's address with its prefix length.
func bridgePrefix(cfg model.DaemonConfig) (netip.Prefix, error) {
	addr, err := netip.ParseAddr(cfg.BridgeIP)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bridge_ip %q: %w", cfg.BridgeIP, err)
	}
	bits, err := strconv.Atoi(strings.TrimPrefix(cfg.CIDR, "/"))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("cidr %q: %w", cfg.CIDR, err)
	}
	return netip.PrefixFrom(addr, bits), nil
}

// allocateIP picks the lowest host address of the bridge network that is
// not the bridge's and no VM holds. A VM keeps its address for its life;
// an address comes free only when its VM is removed.
func allocateIP(bridge netip.Prefix, used map[string]bool) (netip.Addr, error) {
	network := bridge.Masked()
	for a := network.Addr().Next(); network.Contains(a); a = a.Next() {
		if !network.Contains(a.Next()) { // the broadcast address
			break
		}
		if a == bridge.Addr() || used[a.String()] {
			continue
		}
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("no free guest address in %s: %w", network, errdefs.ErrConflict)
}

// macFor derives a VM's MAC from its address: locally administered
// unicast (02), "bf" for banger, then the four address bytes.
func macFor(ip netip.Addr) string {
	b := ip.As4()
	return fmt.Sprintf("02:bf:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
}

// allocateCID picks the lowest vsock context id (>= 3) no VM holds.
func allocateCID(used map[uint32]bool) uint32 {
	for cid := uint32(3); ; cid++ {
		if !used[cid] {
			return cid
		}
	}
}
