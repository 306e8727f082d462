package vms

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"

	"banger/internal/config"
	"banger/internal/disk"
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

// allocateVM picks the VM's identity — id, address, MAC, vsock CID,
// paths — and records it, with "create in progress" in LastError so a
// daemon that dies mid-create leaves a row its successor can clean up.
func (s *Service) allocateVM(ctx context.Context, plan createPlan, opID string) (model.VMRecord, error) {
	strategy := s.overlayStrategyNow(ctx)
	bridge, err := config.BridgePrefix(s.cfg)
	if err != nil {
		return model.VMRecord{}, err
	}
	id, err := model.NewID()
	if err != nil {
		return model.VMRecord{}, err
	}
	s.allocMu.Lock()
	defer s.allocMu.Unlock()
	vms, err := s.store.ListVMs(ctx)
	if err != nil {
		return model.VMRecord{}, err
	}
	usedIPs := map[string]bool{}
	usedCIDs := map[uint32]bool{}
	for _, vm := range vms {
		usedIPs[vm.Runtime.GuestIP] = true
		usedCIDs[vm.Runtime.VSockCID] = true
	}
	ip, err := allocateIP(bridge, usedIPs)
	if err != nil {
		return model.VMRecord{}, err
	}
	vm := s.newRecord(id, plan, strategy, ip, allocateCID(usedCIDs), opID)
	if err := s.store.CreateVM(ctx, vm); err != nil {
		return model.VMRecord{}, err
	}
	for _, p := range []string{vm.Runtime.VMDir, filepath.Dir(vm.Runtime.APISockPath)} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			err = fmt.Errorf("create %s: %w", p, err)
			if derr := s.store.DeleteVM(context.WithoutCancel(ctx), vm.ID); derr != nil {
				return model.VMRecord{}, fmt.Errorf("%w (and removing its record failed: %v; remove it with 'banger vm rm %s')", err, derr, vm.Name)
			}
			return model.VMRecord{}, err
		}
	}
	return vm, nil
}

// newRecord is a new VM's row: everything derived from its id, address
// and the layout, fixed for its life.
func (s *Service) newRecord(id string, plan createPlan, strategy disk.OverlayStrategy, ip netip.Addr, cid uint32, opID string) model.VMRecord {
	dir := filepath.Join(s.layout.VMsDir, id)
	now := s.now()
	return model.VMRecord{
		ID: id, Name: plan.name, ImageID: plan.image.ID, State: model.VMStateCreated,
		CreatedAt: now, UpdatedAt: now, LastTouchedAt: now,
		Spec: plan.spec,
		Runtime: model.VMRuntime{
			State:           model.VMStateCreated,
			GuestIP:         ip.String(),
			MAC:             macFor(ip),
			VSockCID:        cid,
			DNSName:         plan.name + ".vm",
			VMDir:           dir,
			VMM:             plan.driver,
			OverlayStrategy: string(strategy),
			SystemOverlay:   filepath.Join(dir, overlayFile(strategy)),
			WorkDiskPath:    filepath.Join(dir, "work.ext4"),
			LogPath:         filepath.Join(dir, "console.log"),
			// Sockets go in the runtime dir: a socket path must fit in
			// 107 bytes, which a home directory's data dir may not.
			APISockPath: filepath.Join(s.layout.RuntimeDir, "vm", id[:16]+".ctl"),
			VSockPath:   filepath.Join(s.layout.RuntimeDir, "vm", id[:16]+".vsock"),
			MetricsPath: filepath.Join(dir, "metrics.json"),
			LastError:   createInFlight + " (" + opID + ")",
		},
	}
}
