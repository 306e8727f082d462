package daemon

import (
	"context"
	"time"

	"banger/internal/api"
	"banger/internal/model"
)

// operationShutdownLimit bounds how long shutdown waits for cancelled
// operations to clean up (an image build removing its tree).
const operationShutdownLimit = 60 * time.Second

func (d *Daemon) operationStatus(ctx context.Context, p api.OperationStatusParams) (api.OperationStatus, error) {
	return d.ops.Status(ctx, p.ID, p.AfterSeq, time.Duration(p.WaitMS)*time.Millisecond)
}

func (d *Daemon) operationCancel(ctx context.Context, p api.OperationCancelParams) (struct{}, error) {
	op := d.beginOperation(ctx, "operation.cancel", "target_op_id", p.ID)
	if err := d.ops.Cancel(p.ID); err != nil {
		return struct{}{}, op.fail(err)
	}
	op.done()
	return struct{}{}, nil
}

// recover, at start-up, settles what a previous daemon left unfinished:
// operations it recorded as running can no longer be, and image builds it
// was doing left work directories behind.
func (d *Daemon) recover(ctx context.Context) {
	op := d.beginOperation(WithOpID(ctx, newOpID()), "daemon.recover")
	n, err := d.store.InterruptOperations(ctx, "interrupted: bangerd stopped while it ran", model.Now())
	if err != nil {
		op.fail(err)
		return
	}
	if err := d.builder.CleanLeftovers(ctx); err != nil {
		op.fail(err, "interrupted_operations", n)
		return
	}
	if err := d.store.PruneOperations(ctx, time.Now().Add(-7*24*time.Hour)); err != nil {
		op.fail(err, "interrupted_operations", n)
		return
	}
	op.done("interrupted_operations", n)
}

// stopOperations cancels running operations at shutdown and waits, a
// while, for them to clean up after themselves.
func (d *Daemon) stopOperations() {
	ctx, cancel := context.WithTimeout(context.Background(), operationShutdownLimit)
	defer cancel()
	if err := d.ops.Shutdown(ctx); err != nil {
		d.logger.Error("operations did not finish at shutdown", "error", err.Error())
	}
}
