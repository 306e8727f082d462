package helper

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"

	"banger/internal/buildinfo"
	"banger/internal/errdefs"
	"banger/internal/helperapi"
	"banger/internal/hostnet"
	"banger/internal/model"
	"banger/internal/rpc"
)

// tapAlias marks a link as the helper's own; reconcile deletes only links
// that carry it (and have a tap name), so it never touches an interface
// it did not make.
const tapAliasPrefix = "banger-helper uid="

func tapAlias(uid uint32) string { return tapAliasPrefix + strconv.FormatUint(uint64(uid), 10) }

func peerUID(ctx context.Context) uint32 {
	p, _ := rpc.PeerFromContext(ctx)
	return p.UID
}

func (h *Helper) bridgeInfo() helperapi.BridgeInfo {
	info := helperapi.BridgeInfo{Name: h.cfg.BridgeName, Address: h.bridge.String()}
	if st, err := hostnet.InspectBridge(h.cfg.BridgeName, h.bridge); err == nil {
		info.Exists, info.Up = st.Exists, st.Up
	}
	return info
}

func (h *Helper) status(ctx context.Context, _ rpc.NoParams) (helperapi.StatusResult, error) {
	uid := peerUID(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	res := helperapi.StatusResult{
		Version:         buildinfo.Version(),
		ProtocolVersion: buildinfo.ProtocolVersion,
		PeerUID:         uid,
		Bridge:          h.bridgeInfo(),
		Taps:            []helperapi.TapInfo{},
		NAT:             []helperapi.NATEntry{},
		MaxTapsPerUID:   h.cfg.MaxTapsPerUID,
	}
	for _, t := range h.state.tapsOf(uid) {
		res.Taps = append(res.Taps, helperapi.TapInfo{Name: t.Name, UID: t.UID})
	}
	for _, n := range h.state.natOf(uid) {
		res.NAT = append(res.NAT, helperapi.NATEntry{GuestIP: n.GuestIP, Tap: n.Tap, Uplink: n.Uplink})
	}
	res.DMSnapshot, res.DMSnapshotDetail = h.dmAvailable(ctx)
	res.Overlays = []helperapi.OverlayInfo{}
	for _, o := range h.state.overlaysOf(uid) {
		res.Overlays = append(res.Overlays, o.info())
	}
	return res, nil
}

func (h *Helper) ensureBridge(ctx context.Context, _ rpc.NoParams) (helperapi.EnsureBridgeResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	created, err := h.ensureBridgeLocked()
	if err != nil {
		return helperapi.EnsureBridgeResult{}, err
	}
	return helperapi.EnsureBridgeResult{Bridge: h.bridgeInfo(), Created: created}, nil
}

// ensureBridgeLocked makes the bridge exist and be up (cheap netlink
// checks, every time), and puts banger's chains with the bridge rule in
// place once per helper lifetime: that runs iptables, which costs more
// than creating a tap.
func (h *Helper) ensureBridgeLocked() (bool, error) {
	created, err := hostnet.EnsureBridge(h.cfg.BridgeName, h.bridge)
	if err != nil {
		return false, fmt.Errorf("bridge %s: %w", h.cfg.BridgeName, err)
	}
	if created || !h.chainsReady {
		if fw, err := h.firewall(); err == nil {
			if err := fw.EnsureChains(h.cfg.BridgeName); err != nil {
				return created, err
			}
			h.chainsReady = true
		}
	}
	return created, nil
}

func (h *Helper) createTap(ctx context.Context, _ rpc.NoParams) (helperapi.TapCreateResult, error) {
	uid := peerUID(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := len(h.state.tapsOf(uid)); n >= h.cfg.MaxTapsPerUID {
		return helperapi.TapCreateResult{}, fmt.Errorf("uid %d already holds %d taps, the most max_taps_per_uid allows: %w", uid, n, errdefs.ErrConflict)
	}
	if _, err := h.ensureBridgeLocked(); err != nil {
		return helperapi.TapCreateResult{}, err
	}
	name, err := h.freeTapName()
	if err != nil {
		return helperapi.TapCreateResult{}, err
	}

	// Intent first: the record exists before the tap does.
	rec := &tapRecord{Name: name, UID: uid, CreatedAt: model.Now()}
	h.state.Taps[name] = rec
	if err := h.saveState(); err != nil {
		delete(h.state.Taps, name)
		return helperapi.TapCreateResult{}, err
	}
	if err := hostnet.CreateTap(name, uid, tapAlias(uid), h.cfg.BridgeName); err != nil {
		delete(h.state.Taps, name)
		err = fmt.Errorf("create tap: %w", err)
		if errors.Is(err, hostnet.ErrExists) {
			err = fmt.Errorf("%w: %w", err, errdefs.ErrConflict)
		}
		return helperapi.TapCreateResult{}, errors.Join(err, h.saveState())
	}
	h.failpoint("tap-created")
	rec.Ready = true
	if err := h.saveState(); err != nil {
		// The tap exists but cannot be recorded as ready: undo it so the
		// caller's error matches the host.
		delete(h.state.Taps, name)
		return helperapi.TapCreateResult{}, errors.Join(err, hostnet.DeleteLink(name), h.saveState())
	}
	return helperapi.TapCreateResult{Name: name}, nil
}

// freeTapName picks the lowest index neither recorded nor taken by an
// existing interface, so the helper never collides with a link it did
// not make.
func (h *Helper) freeTapName() (string, error) {
	for i := 0; i <= maxTapIndex; i++ {
		name := tapName(i)
		if _, taken := h.state.Taps[name]; taken {
			continue
		}
		exists, err := hostnet.LinkExists(name)
		if err != nil {
			return "", err
		}
		if !exists {
			return name, nil
		}
	}
	return "", fmt.Errorf("no free tap name: %w", errdefs.ErrUnavailable)
}

// ownTap returns the caller's ready tap of that name, refusing names the
// helper would never make, taps it did not make, and other users' taps.
func (h *Helper) ownTap(uid uint32, name string) (*tapRecord, error) {
	if err := checkTapName(name); err != nil {
		return nil, err
	}
	rec, ok := h.state.Taps[name]
	if !ok || !rec.Ready {
		return nil, fmt.Errorf("tap %q was not made by banger-helper: %w", name, errdefs.ErrNotFound)
	}
	if rec.UID != uid {
		return nil, fmt.Errorf("tap %q belongs to another user: %w", name, errdefs.ErrUnauthorized)
	}
	return rec, nil
}

func (h *Helper) deleteTap(ctx context.Context, p helperapi.TapDeleteParams) (struct{}, error) {
	uid := peerUID(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := h.ownTap(uid, p.Name); err != nil {
		return struct{}{}, err
	}
	for _, n := range h.state.natBehind(p.Name) {
		if err := h.removeNATLocked(n); err != nil {
			return struct{}{}, err
		}
	}
	if err := hostnet.DeleteLink(p.Name); err != nil && !errors.Is(err, hostnet.ErrNotFound) {
		return struct{}{}, err
	}
	delete(h.state.Taps, p.Name)
	return struct{}{}, h.saveState()
}

func (h *Helper) enableNAT(ctx context.Context, p helperapi.NATEnableParams) (helperapi.NATEntry, error) {
	uid := peerUID(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := h.ownTap(uid, p.Tap); err != nil {
		return helperapi.NATEntry{}, err
	}
	ip, err := checkGuestIP(p.GuestIP, h.bridge)
	if err != nil {
		return helperapi.NATEntry{}, err
	}
	if cur, ok := h.state.NAT[ip.String()]; ok {
		switch {
		case cur.UID != uid:
			return helperapi.NATEntry{}, fmt.Errorf("guest ip %s has NAT for another user: %w", ip, errdefs.ErrUnauthorized)
		case cur.Tap != p.Tap:
			return helperapi.NATEntry{}, fmt.Errorf("guest ip %s has NAT behind tap %s already: %w", ip, cur.Tap, errdefs.ErrConflict)
		case cur.Ready:
			return helperapi.NATEntry{GuestIP: cur.GuestIP, Tap: cur.Tap, Uplink: cur.Uplink}, nil
		}
	}
	fw, err := h.firewall()
	if err != nil {
		return helperapi.NATEntry{}, err
	}
	uplink, err := hostnet.DefaultRouteInterface()
	if err != nil {
		return helperapi.NATEntry{}, errdefs.Mark(errdefs.ErrUnavailable, err)
	}
	rec := &natRecord{GuestIP: ip.String(), Tap: p.Tap, UID: uid, Bridge: h.cfg.BridgeName, Uplink: uplink}
	h.state.NAT[rec.GuestIP] = rec
	if err := h.saveState(); err != nil {
		delete(h.state.NAT, rec.GuestIP)
		return helperapi.NATEntry{}, err
	}
	undo := func(err error) (helperapi.NATEntry, error) {
		delete(h.state.NAT, rec.GuestIP)
		return helperapi.NATEntry{}, errors.Join(err, fw.RemoveNAT(natRule(rec)), h.saveState())
	}
	if err := hostnet.EnableIPv4Forwarding(); err != nil {
		return undo(err)
	}
	if err := fw.EnsureChains(h.cfg.BridgeName); err != nil {
		return undo(err)
	}
	if err := fw.AddNAT(natRule(rec)); err != nil {
		return undo(err)
	}
	h.failpoint("nat-added")
	rec.Ready = true
	if err := h.saveState(); err != nil {
		return undo(err)
	}
	return helperapi.NATEntry{GuestIP: rec.GuestIP, Tap: rec.Tap, Uplink: rec.Uplink}, nil
}

func (h *Helper) disableNAT(ctx context.Context, p helperapi.NATDisableParams) (struct{}, error) {
	uid := peerUID(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	ip, err := checkGuestIP(p.GuestIP, h.bridge)
	if err != nil {
		return struct{}{}, err
	}
	rec, ok := h.state.NAT[ip.String()]
	if !ok {
		return struct{}{}, fmt.Errorf("guest ip %s has no NAT: %w", ip, errdefs.ErrNotFound)
	}
	if rec.UID != uid {
		return struct{}{}, fmt.Errorf("guest ip %s has NAT for another user: %w", ip, errdefs.ErrUnauthorized)
	}
	return struct{}{}, h.removeNATLocked(rec)
}

func (h *Helper) removeNATLocked(rec *natRecord) error {
	fw, err := h.firewall()
	if err != nil {
		return err
	}
	if err := fw.RemoveNAT(natRule(rec)); err != nil {
		return err
	}
	delete(h.state.NAT, rec.GuestIP)
	return h.saveState()
}

func natRule(rec *natRecord) hostnet.NATRule {
	return hostnet.NATRule{GuestIP: netip.MustParseAddr(rec.GuestIP), Bridge: rec.Bridge, Uplink: rec.Uplink}
}
