package tappool

import (
	"context"
	"errors"
	"sync"
	"time"

	"banger/internal/opid"
	"banger/internal/oplog"
)

// closeTimeout bounds releasing the pool's taps at shutdown.
const closeTimeout = 15 * time.Second

// Lister lists the user's taps that no VM uses, for Adopt: the taps left
// by a daemon that died.
type Lister func(ctx context.Context) ([]string, error)

// Run brings the pool up without holding up the daemon's start: in the
// background it adopts the taps free lists as soon as that works (the
// helper answers), and runs the refill loop, which keeps retrying on its
// own while the helper is down. The returned stop ends both and deletes
// the pool's ready taps, under a context of its own so that a cancelled
// ctx does not cut the clean-up short. Adoption, every attempt of it,
// runs and is logged under one op id.
func (p *Pool) Run(ctx context.Context, free Lister) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// One attempt first, so that taps left over are adopted before
		// the loop makes new ones; then refill and adoption retry side
		// by side until the lister works.
		adoptCtx := opid.Fresh(ctx)
		op := oplog.Begin(adoptCtx, p.logger, "tap_pool.adopt", "tap_pool_size", p.size)
		done := p.adoptOnce(adoptCtx, op, free, 0)
		go p.Start(ctx)
		for delay := time.Duration(0); !done; {
			delay = nextBackoff(delay, p.minBackoff, p.maxBackoff)
			select {
			case <-ctx.Done():
				op.Done("helper_reached", false)
				return
			case <-time.After(delay):
			}
			done = p.adoptOnce(adoptCtx, op, free, delay)
		}
	}()

	return func() {
		cancel()
		wg.Wait()
		closeCtx, cancelClose := context.WithTimeout(opid.Fresh(context.WithoutCancel(ctx)), closeTimeout)
		defer cancelClose()
		op := oplog.Begin(closeCtx, p.logger, "tap_pool.close")
		if err := p.Close(closeCtx); err != nil {
			op.Fail(err)
			return
		}
		op.Done()
	}
}

// adoptOnce makes one attempt at adopting free taps and reports whether
// adoption is over: done, failed for good, or pointless because the pool
// closed. A lister that fails (the helper is unreachable) is worth
// another try; only the first such failure is logged at info level.
func (p *Pool) adoptOnce(ctx context.Context, op *oplog.Log, free Lister, retryIn time.Duration) (over bool) {
	listed := false
	adopted, deleted, err := p.Adopt(ctx, func(ctx context.Context) ([]string, error) {
		names, err := free(ctx)
		listed = err == nil
		return names, err
	})
	switch {
	case listed && err == nil:
		op.Done("adopted", adopted, "deleted", deleted)
		return true
	case listed:
		op.Fail(err, "adopted", adopted, "deleted", deleted)
		return true
	case errors.Is(err, ErrClosed) || ctx.Err() != nil:
		op.Done("helper_reached", false)
		return true
	case retryIn == 0:
		op.Stage("waiting for banger-helper", "error", err.Error())
		return false
	}
	op.DebugStage("waiting for banger-helper", "error", err.Error(), "retried_after_ms", retryIn.Milliseconds())
	return false
}
