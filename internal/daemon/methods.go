package daemon

import (
	"context"
	"time"

	"banger/internal/api"
	"banger/internal/model"
	"banger/internal/oplog"
	"banger/internal/rpc"
	"banger/internal/vms"
)

// methods is the daemon's RPC surface: each method is a service call,
// with the wire's parameters turned into the service's types here.
func (d *Daemon) methods() map[string]rpc.Handler {
	return map[string]rpc.Handler{
		api.MethodDaemonPing:     rpc.Typed(d.ping),
		api.MethodDaemonStatus:   rpc.Typed(d.status),
		api.MethodDaemonShutdown: rpc.Typed(d.shutdownDaemon),
		api.MethodDaemonDoctor:   rpc.Typed(d.runDoctor),

		api.MethodOperationStatus: rpc.Typed(d.operationStatus),
		api.MethodOperationCancel: rpc.Typed(d.operationCancel),

		api.MethodImageBuildBegin:  rpc.Typed(d.images.BuildBegin),
		api.MethodImageBuildStatus: rpc.Typed(d.operationStatus),
		api.MethodImageRegister:    rpc.Typed(d.images.Register),
		api.MethodImageList:        rpc.Typed(d.imageList),
		api.MethodImageShow:        rpc.Typed(d.imageShow),
		api.MethodImageRemove:      rpc.Typed(d.imageRemove),

		api.MethodVMCreateBegin:  rpc.Typed(d.vmCreateBegin),
		api.MethodVMCreateStatus: rpc.Typed(d.operationStatus),
		api.MethodVMStart:        rpc.Typed(d.vmStart),
		api.MethodVMStartBegin:   rpc.Typed(d.vmStartBegin),
		api.MethodVMStop:         rpc.Typed(d.vms.Stop),
		api.MethodVMRestart:      rpc.Typed(d.vms.Restart),
		api.MethodVMRemove:       rpc.Typed(d.vms.Remove),
		api.MethodVMList:         rpc.Typed(d.vmList),
		api.MethodVMShow:         rpc.Typed(d.vmShow),
		api.MethodVMSet:          rpc.Typed(d.vmSet),
		api.MethodVMTouch:        rpc.Typed(d.vmTouch),
		api.MethodVMSSHInfo:      rpc.Typed(d.vmSSHInfo),

		api.MethodWorkspacePrepareBegin: rpc.Typed(d.workspace.PrepareBegin),
		api.MethodWorkspaceShow:         rpc.Typed(d.workspaceShow),
		api.MethodWorkspaceHarvest:      rpc.Typed(d.workspace.Harvest),
	}
}

func (d *Daemon) runDoctor(ctx context.Context, _ rpc.NoParams) (api.DoctorResult, error) {
	return d.doctor.Run(ctx), nil
}

func (d *Daemon) operationStatus(ctx context.Context, p api.OperationStatusParams) (api.OperationStatus, error) {
	return d.ops.Status(ctx, p.ID, p.AfterSeq, time.Duration(p.WaitMS)*time.Millisecond)
}

func (d *Daemon) operationCancel(ctx context.Context, p api.OperationCancelParams) (struct{}, error) {
	op := oplog.Begin(ctx, d.logger, "operation.cancel", "target_op_id", p.ID)
	if err := d.ops.Cancel(p.ID); err != nil {
		return struct{}{}, op.Fail(err)
	}
	op.Done()
	return struct{}{}, nil
}

func (d *Daemon) imageList(ctx context.Context, _ rpc.NoParams) ([]model.Image, error) {
	return d.images.List(ctx)
}

func (d *Daemon) imageShow(ctx context.Context, p api.ImageRef) (api.ImageDetail, error) {
	return d.images.Show(ctx, p.Name)
}

func (d *Daemon) imageRemove(ctx context.Context, p api.ImageRef) (api.ImageRemoveResult, error) {
	return d.images.Remove(ctx, p.Name)
}

// vmCreateBegin checks the request's sizes, then its workspace, then
// hands the create to the VM service, with the workspace as a work tree
// that the workspace service builds.
func (d *Daemon) vmCreateBegin(ctx context.Context, p api.VMCreateParams) (model.Operation, error) {
	req, err := p.Request()
	if err != nil {
		return model.Operation{}, err
	}
	create := vms.CreateRequest{VMCreateRequest: req, NAT: p.NAT, VMM: p.VMM}
	if p.Workspace != nil {
		plan, err := d.workspace.PlanCreate(ctx, *p.Workspace)
		if err != nil {
			return model.Operation{}, err
		}
		if create.Name == "" {
			create.Name = plan.DefaultVMName(ctx)
		}
		create.WorkTree = &vms.WorkTree{GuestPath: plan.GuestPath, Build: func(ctx context.Context, vm model.VMRecord, dir string, rep vms.Progress) (int64, error) {
			return plan.Build(ctx, vm, dir, rep)
		}}
	}
	return d.vms.CreateBegin(ctx, create)
}

func (d *Daemon) vmStart(ctx context.Context, p api.VMRef) (api.VMDetail, error) {
	return d.vms.Start(ctx, p.Name)
}

func (d *Daemon) vmStartBegin(ctx context.Context, p api.VMRef) (model.Operation, error) {
	return d.vms.StartBegin(ctx, p.Name)
}

func (d *Daemon) vmList(ctx context.Context, _ rpc.NoParams) ([]api.VMDetail, error) {
	return d.vms.List(ctx)
}

func (d *Daemon) vmShow(ctx context.Context, p api.VMRef) (api.VMDetail, error) {
	vm, err := d.vms.Show(ctx, p.Name)
	if err != nil {
		return vm, err
	}
	vm.Workspace, err = d.workspace.Of(ctx, vm.ID)
	return vm, err
}

func (d *Daemon) workspaceShow(ctx context.Context, p api.VMRef) (model.Workspace, error) {
	return d.workspace.Show(ctx, p.Name)
}

func (d *Daemon) vmSet(ctx context.Context, p api.VMSetParams) (api.VMDetail, error) {
	req, err := p.Request()
	if err != nil {
		return api.VMDetail{}, err
	}
	return d.vms.Set(ctx, req)
}

func (d *Daemon) vmTouch(ctx context.Context, p api.VMRef) (api.VMDetail, error) {
	return d.vms.Touch(ctx, p.Name)
}

func (d *Daemon) vmSSHInfo(ctx context.Context, p api.VMRef) (api.VMSSHInfo, error) {
	return d.vms.SSHInfo(ctx, p.Name)
}
