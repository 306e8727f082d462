package tappool

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"banger/internal/opid"
)

// Start refills the pool up to its size, then again after every Take,
// until ctx ends or Close is called; run it in its own goroutine. A
// failed refill is recorded in Stats.LastError and retried after a
// back-off that doubles from 500ms to 30s, so a helper that is down is
// asked twice a minute, not in a loop. Each refill runs under an op id
// of its own, forwarded to the helper and logged, so the helper's lines
// for it can be found. A second Start, or one after Close, returns at
// once.
func (p *Pool) Start(ctx context.Context) {
	p.mu.Lock()
	if p.started || p.closed {
		p.mu.Unlock()
		return
	}
	p.started = true
	p.loopDone = make(chan struct{})
	done := p.loopDone
	p.mu.Unlock()
	defer close(done)
	if p.size == 0 {
		return
	}

	var delay time.Duration
	for {
		if opID, err := p.refill(ctx); err != nil {
			delay = nextBackoff(delay, p.minBackoff, p.maxBackoff)
			p.refillFailed(ctx, opID, err, delay)
		} else {
			delay = 0
		}
		if delay == 0 {
			select {
			case <-ctx.Done():
				return
			case <-p.stop:
				return
			case <-p.wake:
			}
			continue
		}
		// A Take during the back-off leaves its request in wake; it is
		// served when the back-off ends, not sooner.
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-p.stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// refill creates taps, one at a time, until the pool is full, ctx ends
// or the pool is closed. It returns the op id the creates ran under.
func (p *Pool) refill(ctx context.Context) (opID string, err error) {
	start := time.Now()
	var created []string
	for ctx.Err() == nil {
		if opID == "" {
			opID = opid.New()
			ctx = opid.With(ctx, opID)
		}
		name, more, err := p.createOne(ctx)
		if err != nil {
			return opID, err
		}
		if name != "" {
			created = append(created, name)
		}
		if !more {
			break
		}
	}
	p.mu.Lock()
	p.lastErr = ""
	ready := len(p.ready)
	p.mu.Unlock()
	if len(created) > 0 {
		p.logger.InfoContext(ctx, "tap pool refilled", "taps", created,
			"ready", ready, "size", p.size, "duration_ms", time.Since(start).Milliseconds())
	}
	return opID, nil
}

// createOne adds one tap to the pool if it is short of one. more says
// whether it was (so another may be needed). The create is not cancelled
// with ctx: a tap the helper made must be accounted for, so the loop
// waits for the answer (bounded by refillCallTimeout) and, if the pool
// was closed meanwhile, deletes the tap.
func (p *Pool) createOne(ctx context.Context) (name string, more bool, err error) {
	p.allocMu.RLock()
	defer p.allocMu.RUnlock()
	p.mu.Lock()
	if p.closed || len(p.ready)+p.creating >= p.size {
		p.mu.Unlock()
		return "", false, nil
	}
	p.creating++
	p.mu.Unlock()

	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refillCallTimeout)
	defer cancel()
	name, err = p.alloc.CreateTap(callCtx)

	p.mu.Lock()
	p.creating--
	switch {
	case err != nil:
		p.mu.Unlock()
		return "", false, fmt.Errorf("create tap: %w", err)
	case p.knownLocked(name):
		p.mu.Unlock()
		return "", false, fmt.Errorf("create tap: the helper returned %s, which the tap pool already holds", name)
	case p.closed:
		p.mu.Unlock()
		if err := p.alloc.DeleteTap(callCtx, name); err != nil {
			return "", false, fmt.Errorf("delete tap %s created as the pool closed: %w", name, err)
		}
		return "", false, nil
	}
	p.ready = append(p.ready, name)
	p.mu.Unlock()
	return name, true, nil
}

// refillFailed records err for Stats and logs it: at warn level when it
// is new, at debug level while the same error repeats, so a helper that
// stays down does not fill the log.
func (p *Pool) refillFailed(ctx context.Context, opID string, err error, retryIn time.Duration) {
	msg := err.Error()
	p.mu.Lock()
	repeated := p.lastErr == msg
	p.lastErr = msg
	ready := len(p.ready)
	p.mu.Unlock()
	level := slog.LevelWarn
	if repeated {
		level = slog.LevelDebug
	}
	p.logger.Log(opid.With(ctx, opID), level, "tap pool refill failed", "error", msg,
		"retry_in_ms", retryIn.Milliseconds(), "ready", ready, "size", p.size)
}

// kick asks the refill loop to run, without waiting for it.
func (p *Pool) kick() {
	if p.size == 0 {
		return
	}
	select {
	case p.wake <- struct{}{}:
	default: // a request is pending already
	}
}

// nextBackoff doubles the previous delay, starting at lo and capped at hi.
func nextBackoff(prev, lo, hi time.Duration) time.Duration {
	if prev < lo {
		return lo
	}
	return min(prev*2, hi)
}
