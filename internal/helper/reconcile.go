package helper

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"banger/internal/hostnet"
)

// reconcile makes the host match the records, on start-up, before the
// helper serves anything: taps recorded but never finished (a crash mid
// create) are deleted; records whose tap is gone are dropped; taps the
// helper made (its alias) but has no record of are deleted; NAT records
// not finished or whose tap is gone are dropped; and banger's iptables
// chains are rebuilt from the remaining NAT records. After a SIGKILL at
// any point, a restart leaves exactly what the records say.
func (h *Helper) reconcile() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	st, loadErr := loadState(h.statePath)
	if st == nil {
		return loadErr
	}
	if loadErr != nil {
		h.logger.Error("helper state unreadable; treating every banger object as unrecorded", "error", loadErr.Error())
	}
	h.state = st

	links, err := hostnet.Links()
	if err != nil {
		return err
	}
	byName := map[string]hostnet.Link{}
	for _, l := range links {
		byName[l.Name] = l
	}

	for name, rec := range st.Taps {
		_, exists := byName[name]
		switch {
		case !rec.Ready:
			if exists {
				if err := hostnet.DeleteLink(name); err != nil && !errors.Is(err, hostnet.ErrNotFound) {
					return err
				}
			}
			delete(st.Taps, name)
			h.logger.Info("reconcile: removed unfinished tap", "tap", name, "uid", rec.UID, "existed", exists)
		case !exists:
			delete(st.Taps, name)
			h.logger.Info("reconcile: dropped record of vanished tap", "tap", name, "uid", rec.UID)
		}
	}
	for _, l := range links {
		if _, recorded := st.Taps[l.Name]; recorded || !isHelperLink(l) {
			continue
		}
		if err := hostnet.DeleteLink(l.Name); err != nil && !errors.Is(err, hostnet.ErrNotFound) {
			return err
		}
		h.logger.Info("reconcile: removed unrecorded tap", "tap", l.Name, "alias", l.Alias)
	}

	var rules []hostnet.NATRule
	for ip, rec := range st.NAT {
		if !rec.Ready || st.Taps[rec.Tap] == nil {
			delete(st.NAT, ip)
			h.logger.Info("reconcile: dropped NAT record", "guest_ip", ip, "tap", rec.Tap, "ready", rec.Ready)
			continue
		}
		rules = append(rules, natRule(rec))
	}
	if err := h.resetFirewall(rules); err != nil {
		return err
	}
	if err := h.reconcileOverlays(context.Background()); err != nil {
		return err
	}
	return h.saveState()
}

// resetFirewall rebuilds banger's chains when there is anything to
// rebuild: NAT records, or chains a previous run left.
func (h *Helper) resetFirewall(rules []hostnet.NATRule) error {
	fw, err := h.firewall()
	if err != nil {
		if len(rules) > 0 {
			return fmt.Errorf("restore %d NAT entries: %w", len(rules), err)
		}
		return nil // no iptables, nothing of ours can be in it
	}
	if len(rules) == 0 {
		exists, err := fw.ChainsExist()
		if err != nil || !exists {
			return err // never used NAT: leave the firewall alone
		}
	}
	if err := fw.Reset(h.cfg.BridgeName, rules); err != nil {
		return err
	}
	h.chainsReady = true
	return nil
}

// isHelperLink says whether a link is one the helper made: a tap name
// and the helper's alias. Both are needed, so an interface someone else
// happened to name bgtap3 is never touched.
func isHelperLink(l hostnet.Link) bool {
	return tapIndex(l.Name) >= 0 && strings.HasPrefix(l.Alias, tapAliasPrefix)
}
