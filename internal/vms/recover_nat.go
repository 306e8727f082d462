package vms

import (
	"context"
	"errors"

	"banger/internal/errdefs"
	"banger/internal/model"
	"banger/internal/oplog"
)

// helperNAT is the guest addresses banger-helper has NAT for, as it
// reports them: the truth a restarted daemon reconciles its VMs with.
// Nil when the helper does not answer (nothing is then changed).
func (s *Service) helperNAT(ctx context.Context) map[string]bool {
	ctx, cancel := context.WithTimeout(ctx, helperAskLimit)
	defer cancel()
	st, err := s.helper.Status(ctx)
	if err != nil {
		return nil
	}
	on := make(map[string]bool, len(st.NAT))
	for _, n := range st.NAT {
		on[n.GuestIP] = true
	}
	return on
}

// reconcileNAT makes an adopted VM's NAT what its record says, when the
// helper's answer (nat) says otherwise: a daemon that died in the middle
// of `vm set --nat` changed the one and not the other. The record wins:
// the set was never answered, so the user sees what they had, and can
// ask again. h is updated and written back. Failures are logged; the VM
// runs either way.
func (s *Service) reconcileNAT(ctx context.Context, op *oplog.Log, vm model.VMRecord, h *vmHandles, nat map[string]bool) {
	if nat == nil || h.Tap == "" {
		return
	}
	ip, want, on := vm.Runtime.GuestIP, vm.Spec.NATEnabled, nat[vm.Runtime.GuestIP]
	var err error
	switch {
	case want && !on:
		if _, err = s.helper.EnableNAT(ctx, h.Tap, ip); err == nil {
			h.NATIP = ip
		}
	case !want && on:
		if err = s.helper.DisableNAT(ctx, ip); err == nil || errors.Is(err, errdefs.ErrNotFound) {
			err, h.NATIP = nil, ""
		}
	case (h.NATIP != "") == on:
		return // record, handles and host agree
	default:
		h.NATIP = map[bool]string{true: ip}[on]
	}
	if err == nil {
		err = writeHandles(vm.Runtime.VMDir, *h)
	}
	if err != nil {
		op.Warn("adopted vm's NAT not reconciled with its record", append(oplog.VMAttrs(vm), "nat", want, "error", err.Error())...)
		return
	}
	op.Stage("nat reconciled", append(oplog.VMAttrs(vm), "nat", want)...)
}
