package vms

import (
	"context"

	"banger/internal/api"
	"banger/internal/model"
	"banger/internal/operation"
	"banger/internal/oplog"
)

// KindStart is the operation kind of a VM start begun with StartBegin.
const KindStart = "vm.start"

// startStages are a start's stages: a create's last three.
var startStages = []string{stageTap, stageBoot, stageWaitSSH}

// StartBegin checks that a VM can start and boots it as an operation
// under the request's op id, so a client can follow its stages as it
// follows a create's. A VM that is missing, running or half made is
// refused at once, before the operation begins. The VM stays locked
// until the operation ends, so no stop, set or rm runs in between.
func (s *Service) StartBegin(ctx context.Context, ref string) (model.Operation, error) {
	vm, unlock, err := s.findVM(ctx, ref)
	if err != nil {
		return model.Operation{}, err
	}
	if err := startable(vm); err != nil {
		unlock()
		return model.Operation{}, err
	}
	op, err := s.ops.Begin(ctx, KindStart, vm.Name, startStages, func(ctx context.Context, r *operation.Reporter) (any, error) {
		defer unlock()
		log := oplog.Begin(ctx, s.logger, KindStart, oplog.VMAttrs(vm)...)
		return s.startLocked(ctx, log, vm, operation.Logged{Reporter: r, Log: log})
	})
	if err != nil {
		unlock()
	}
	return op, err
}

// startLocked boots vm, which the caller holds locked and has found
// startable, reporting its stages to rep; a failed boot is recorded on
// the VM.
func (s *Service) startLocked(ctx context.Context, log *oplog.Log, vm model.VMRecord, rep progress) (api.VMDetail, error) {
	vm, err := s.boot(ctx, vm, rep)
	if err != nil {
		s.recordError(ctx, log, vm, err)
		return api.VMDetail{}, log.Fail(err)
	}
	s.touch(ctx, &vm)
	log.Done()
	return s.detail(ctx, vm), nil
}
