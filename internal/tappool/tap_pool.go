// Package tappool keeps tap devices ready so that a VM start gets one
// without a round trip to banger-helper. It owns the bookkeeping only —
// which ready taps the pool holds and which it has handed out — and a
// background loop that refills it through an Allocator (in bangerd, the
// helper client). A tap handed out belongs to its VM until it comes back
// through Return; the pool never deletes it behind the VM's back.
package tappool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"banger/internal/errdefs"
)

// Allocator creates and deletes the caller's taps. helperclient.Client is
// the real one.
type Allocator interface {
	CreateTap(ctx context.Context) (string, error)
	DeleteTap(ctx context.Context, name string) error
}

// ErrClosed is what Take and Adopt return once Close has been called.
var ErrClosed = fmt.Errorf("tap pool is closed: %w", errdefs.ErrUnavailable)

// Back-off between failed refills, and the bound on one allocator call
// the refill loop makes.
const (
	DefaultMinBackoff = 500 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
	refillCallTimeout = 30 * time.Second
)

// Stats is a snapshot of the pool for `banger daemon status`.
type Stats struct {
	Size  int // taps the pool tries to keep ready
	Ready int // taps ready now
	// LastError is why the last refill failed; empty once one succeeds
	// or the pool is full again (a Return or an adoption filled it).
	LastError string
	Hits      uint64 // Takes served from the pool
	Misses    uint64 // Takes that found it empty and created a tap
}

// Pool is a set of ready taps, refilled in the background up to its size.
// Its methods are safe for concurrent use.
//
// Invariant: a tap name is in ready at most once, and never both in ready
// and in out. Every insertion checks both.
type Pool struct {
	alloc  Allocator
	size   int
	logger *slog.Logger

	minBackoff, maxBackoff time.Duration

	// allocMu is held shared by every allocator call the pool makes and
	// exclusively by Adopt, so the list of existing taps Adopt works from
	// never includes a tap whose create or delete is still in flight —
	// one the pool is about to hold, or one that is about to be gone.
	allocMu sync.RWMutex

	mu       sync.Mutex
	ready    []string        // oldest first
	out      map[string]bool // handed out by Take, not yet Returned
	creating int             // refill creates in flight, counted against size
	started  bool
	closed   bool
	loopDone chan struct{} // closed when Start returns; nil before Start
	lastErr  string
	hits     uint64
	misses   uint64

	wake chan struct{} // asks the refill loop to run; holds at most one request
	stop chan struct{} // closed by Close
}

// New returns a pool that keeps size taps ready once Start runs. Size 0
// means no pool: every Take creates a tap and every Return deletes it.
// A nil logger discards.
func New(alloc Allocator, size int, logger *slog.Logger) *Pool {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Pool{
		alloc:      alloc,
		size:       max(size, 0),
		logger:     logger,
		minBackoff: DefaultMinBackoff,
		maxBackoff: DefaultMaxBackoff,
		out:        make(map[string]bool),
		wake:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
	}
}

// Take hands out a tap: a ready one at once (hit), or, when the pool is
// empty, one created now under ctx (miss). Either way it asks the refill
// loop to top the pool up. The tap is the caller's until it is Returned.
func (p *Pool) Take(ctx context.Context) (name string, hit bool, err error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return "", false, ErrClosed
	}
	if len(p.ready) > 0 {
		name = p.ready[0]
		p.ready = slices.Delete(p.ready, 0, 1)
		p.out[name] = true
		p.hits++
		p.mu.Unlock()
		p.kick()
		return name, true, nil
	}
	p.misses++
	p.mu.Unlock()
	p.kick()

	p.allocMu.RLock()
	defer p.allocMu.RUnlock()
	name, err = p.alloc.CreateTap(ctx)
	if err != nil {
		return "", false, fmt.Errorf("create tap: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.knownLocked(name) {
		return "", false, fmt.Errorf("create tap: the helper returned %s, which the tap pool already holds", name)
	}
	p.out[name] = true
	return name, false, nil
}

// Return takes back a tap its VM no longer uses: into the pool when it
// has room, deleted otherwise. The caller must have removed what it put
// behind the tap (NAT) first. Returning a tap the pool holds ready does
// nothing.
func (p *Pool) Return(ctx context.Context, name string) error {
	if name == "" {
		return fmt.Errorf("return tap: empty name: %w", errdefs.ErrInvalidArgument)
	}
	p.mu.Lock()
	delete(p.out, name)
	if slices.Contains(p.ready, name) {
		p.mu.Unlock()
		return nil
	}
	if !p.closed && len(p.ready)+p.creating < p.size {
		p.ready = append(p.ready, name)
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()

	p.allocMu.RLock()
	defer p.allocMu.RUnlock()
	if err := p.alloc.DeleteTap(ctx, name); err != nil {
		return fmt.Errorf("delete tap %s: %w", name, err)
	}
	return nil
}

// Adopt takes into the pool taps that already exist and are free — left
// by a daemon that died — and deletes those beyond its size. list names
// them; Adopt calls it with every create and delete of the pool held
// off, so the names form a consistent snapshot, and it skips any tap the
// pool already holds or has handed out. That makes Adopt safe at any
// time, not only before Start. list must leave out the taps VMs use,
// and must not call the pool.
func (p *Pool) Adopt(ctx context.Context, list func(context.Context) ([]string, error)) (adopted, deleted []string, err error) {
	p.allocMu.Lock()
	defer p.allocMu.Unlock()
	if p.isClosed() {
		return nil, nil, ErrClosed
	}
	names, err := list(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list taps to adopt: %w", err)
	}

	var surplus []string
	seen := make(map[string]bool, len(names))
	p.mu.Lock()
	for _, name := range names {
		if name == "" || seen[name] || p.knownLocked(name) {
			continue
		}
		seen[name] = true
		// creating is 0 here: refill creates hold allocMu shared.
		if !p.closed && len(p.ready) < p.size {
			p.ready = append(p.ready, name)
			adopted = append(adopted, name)
		} else {
			surplus = append(surplus, name)
		}
	}
	p.mu.Unlock()

	var errs []error
	for _, name := range surplus {
		if err := p.alloc.DeleteTap(ctx, name); err != nil {
			errs = append(errs, fmt.Errorf("delete surplus tap %s: %w", name, err))
			continue
		}
		deleted = append(deleted, name)
	}
	return adopted, deleted, errors.Join(errs...)
}

// Close stops the refill loop, waits for a create it has in flight, and
// deletes every ready tap. Taps handed out are their VMs' and are left
// alone. After Close, Take and Adopt fail and Return deletes. Closing
// twice does nothing.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.stop)
	loopDone := p.loopDone
	p.mu.Unlock()

	if loopDone != nil {
		select {
		case <-loopDone:
		case <-ctx.Done():
			// The loop deletes what its create returns once it sees the
			// pool closed; the ready taps stay until the next adoption.
			return fmt.Errorf("close tap pool: refill still running: %w", ctx.Err())
		}
	}

	p.mu.Lock()
	ready := p.ready
	p.ready = nil
	p.mu.Unlock()

	p.allocMu.RLock()
	defer p.allocMu.RUnlock()
	var errs []error
	deleted := make([]string, 0, len(ready))
	for _, name := range ready {
		if err := p.alloc.DeleteTap(ctx, name); err != nil {
			errs = append(errs, fmt.Errorf("delete tap %s: %w", name, err))
			continue
		}
		deleted = append(deleted, name)
	}
	p.logger.InfoContext(ctx, "tap pool closed", "deleted", deleted, "failed", len(errs))
	return errors.Join(errs...)
}

// Stats reports the pool's size, how many taps are ready, and how Takes
// have been served.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := Stats{
		Size:      p.size,
		Ready:     len(p.ready),
		LastError: p.lastErr,
		Hits:      p.hits,
		Misses:    p.misses,
	}
	if st.Ready >= st.Size {
		st.LastError = ""
	}
	return st
}

// knownLocked reports whether the pool holds name, ready or handed out.
func (p *Pool) knownLocked(name string) bool {
	return p.out[name] || slices.Contains(p.ready, name)
}

func (p *Pool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}
