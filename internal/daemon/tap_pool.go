package daemon

import (
	"context"
	"errors"
	"sync"
	"time"

	"banger/internal/model"
	"banger/internal/tappool"
)

const (
	// adoptHelperTimeout bounds the helper.status call adoption makes.
	adoptHelperTimeout = 10 * time.Second
	// tapPoolCloseTimeout bounds releasing the pool's taps at shutdown.
	tapPoolCloseTimeout = 15 * time.Second
	// Adoption retries while the helper is unreachable, as the pool's
	// refills do.
	adoptMinBackoff = tappool.DefaultMinBackoff
	adoptMaxBackoff = tappool.DefaultMaxBackoff
)

// startTapPool brings the tap pool up without holding up start-up: in
// the background it adopts the user's free taps (left by a daemon that
// died) as soon as the helper answers, and runs the refill loop, which
// keeps retrying on its own while the helper is down. The returned
// function stops both and deletes the pool's ready taps, under a context
// of its own so a cancelled ctx does not cut the clean-up short.
func (d *Daemon) startTapPool(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// One attempt first, so that taps left over are adopted before
		// the loop makes new ones; then refill and adoption retry side
		// by side until the helper answers. Adoption, every attempt of
		// it, runs under one op id; the loop mints one per refill.
		adoptCtx := WithOpID(ctx, newOpID())
		op := d.beginOperation(adoptCtx, "tap_pool.adopt",
			"helper_socket", d.helper.Socket, "tap_pool_size", d.cfg.TapPoolSize)
		done := d.adoptTaps(adoptCtx, op, 0)
		go d.tapPool.Start(ctx)
		for delay := time.Duration(0); !done; {
			delay = min(max(delay*2, adoptMinBackoff), adoptMaxBackoff)
			select {
			case <-ctx.Done():
				op.done("helper_reached", false)
				return
			case <-time.After(delay):
			}
			done = d.adoptTaps(adoptCtx, op, delay)
		}
	}()

	return func() {
		cancel()
		wg.Wait()
		closeCtx, cancelClose := context.WithTimeout(context.WithoutCancel(ctx), tapPoolCloseTimeout)
		defer cancelClose()
		closeCtx = WithOpID(closeCtx, newOpID())
		op := d.beginOperation(closeCtx, "tap_pool.close")
		if err := d.tapPool.Close(closeCtx); err != nil {
			op.fail(err)
			return
		}
		op.done()
	}
}

// adoptTaps makes one attempt at adopting the user's free taps into the
// pool and reports whether adoption is over: done, failed for good, or
// pointless because the pool closed. An unreachable helper is worth
// another try; only the first such failure is logged at info level.
func (d *Daemon) adoptTaps(ctx context.Context, op *operationLog, retryIn time.Duration) (over bool) {
	listed := false
	adopted, deleted, err := d.tapPool.Adopt(ctx, func(ctx context.Context) ([]string, error) {
		free, err := d.freeTaps(ctx)
		listed = err == nil
		return free, err
	})
	switch {
	case listed && err == nil:
		op.done("adopted", adopted, "deleted", deleted)
		return true
	case listed:
		op.fail(err, "adopted", adopted, "deleted", deleted)
		return true
	case errors.Is(err, tappool.ErrClosed) || ctx.Err() != nil:
		op.done("helper_reached", false)
		return true
	case retryIn == 0:
		op.stage("waiting for banger-helper", "error", err.Error())
		return false
	}
	op.debugStage("waiting for banger-helper", "error", err.Error(), "retried_after_ms", retryIn.Milliseconds())
	return false
}

// freeTaps lists the user's taps that no VM uses. The helper reports
// every tap the user owns; a VM's is known from its record (the teardown
// mirror of its handles), and the pool itself skips the taps it holds.
func (d *Daemon) freeTaps(ctx context.Context) ([]string, error) {
	hctx, cancel := context.WithTimeout(ctx, adoptHelperTimeout)
	st, err := d.helper.Status(hctx)
	cancel()
	if err != nil {
		return nil, err
	}
	vms, err := d.store.ListVMs(ctx)
	if err != nil {
		return nil, err
	}
	inUse := make(map[string]bool, len(vms))
	for _, vm := range vms {
		if vm.Runtime.TapDevice != "" {
			inUse[vm.Runtime.TapDevice] = true
		}
	}
	var free []string
	for _, tap := range st.Taps {
		if !inUse[tap.Name] {
			free = append(free, tap.Name)
		}
	}
	return free, nil
}

// newOpID mints the op id of work the daemon starts itself, so the
// helper's log lines for it can be traced back. Without one the helper
// mints its own, so a failure only costs correlation.
func newOpID() string {
	id, err := model.NewOpID()
	if err != nil {
		return ""
	}
	return id
}
