// Package operation runs bangerd's asynchronous operations — image builds
// and VM creates — and reports their progress. An operation is begun by
// an RPC and takes that RPC's op id as its own, so one id finds its
// status, its log lines in the daemon and its log lines in the helper. It
// runs in stages; each stage and each line of progress within it is an
// event a client can follow, waiting for the next one rather than
// polling. The record is persisted at each stage, so a daemon restart
// can say an operation was interrupted rather than forget it.
package operation

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"banger/internal/api"
	"banger/internal/errdefs"
	"banger/internal/model"
	"banger/internal/opid"
	"banger/internal/oplog"
)

// Store persists operation records.
type Store interface {
	PutOperation(ctx context.Context, op model.Operation) error
	GetOperation(ctx context.Context, id string) (model.Operation, error)
}

// Func does an operation's work, reporting through r. Its result is
// marshalled as the operation's result.
type Func func(ctx context.Context, r *Reporter) (any, error)

const (
	maxEvents   = 2000             // per operation; older details are dropped first
	keepDone    = 30 * time.Minute // finished operations stay in memory this long
	maxWait     = 10 * time.Second // longest a status call waits for news
	persistWait = 5 * time.Second
	// gatherNews is how long a waiting status call, once news arrives,
	// waits for more before answering (the end is answered at once). The
	// stages of a create come milliseconds apart; answering each alone
	// cost a round trip each, on both sides, for news no one can read
	// that fast.
	gatherNews = 10 * time.Millisecond
)

// Registry tracks the daemon's operations.
type Registry struct {
	store  Store
	logger *slog.Logger

	mu  sync.Mutex
	ops map[string]*op
	wg  sync.WaitGroup
}

type op struct {
	rec      model.Operation
	stages   []string
	stageIdx int     // index of rec.Stage in stages, -1 before the first
	frac     float64 // progress within the current stage
	events   []api.OperationEvent
	lastSeq  int
	changed  chan struct{} // closed and replaced on every change
	cancel   context.CancelFunc
	finished time.Time
}

// NewRegistry returns a registry that persists to store.
func NewRegistry(store Store, logger *slog.Logger) *Registry {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Registry{store: store, logger: logger, ops: map[string]*op{}}
}

// Begin starts fn in the background as an operation of kind on target,
// with the given stages, and returns its record at once. Its id is the op
// id on ctx (the RPC that began it), minted when there is none. fn runs
// under a context that the caller's cancellation does not reach — only
// Cancel and Shutdown stop it — carrying the same op id.
func (r *Registry) Begin(ctx context.Context, kind, target string, stages []string, fn Func) (model.Operation, error) {
	id := opid.From(ctx)
	if id == "" {
		id = opid.New()
	}
	now := time.Now().UTC()
	o := &op{
		rec:      model.Operation{ID: id, Kind: kind, Target: target, State: model.OperationRunning, CreatedAt: now, UpdatedAt: now},
		stages:   stages,
		stageIdx: -1,
		changed:  make(chan struct{}),
	}
	// The cancel func exists before anyone can find the operation.
	runCtx, cancel := context.WithCancel(opid.With(context.WithoutCancel(ctx), id))
	o.cancel = cancel
	r.mu.Lock()
	if _, dup := r.ops[id]; dup {
		r.mu.Unlock()
		cancel()
		return model.Operation{}, fmt.Errorf("operation %s exists already: %w", id, errdefs.ErrConflict)
	}
	r.ops[id] = o
	r.mu.Unlock()
	if err := r.store.PutOperation(ctx, o.rec); err != nil {
		r.mu.Lock()
		delete(r.ops, id)
		r.mu.Unlock()
		cancel()
		return model.Operation{}, err
	}

	// What Begin returns is a copy taken before the work can change it.
	began := o.rec
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer cancel()
		rep := &Reporter{reg: r, op: o}
		result, err := runFunc(runCtx, fn, rep)
		r.finish(o, result, err, runCtx.Err() != nil)
	}()
	return began, nil
}

// runFunc turns a panic in an operation into its failure.
func runFunc(ctx context.Context, fn Func, r *Reporter) (result any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("operation panic: %v", p)
		}
	}()
	return fn(ctx, r)
}

func (r *Registry) finish(o *op, result any, err error, cancelled bool) {
	r.mu.Lock()
	rec := o.rec
	r.mu.Unlock()
	now := time.Now().UTC()
	switch {
	case err == nil:
		rec.State = model.OperationSucceeded
		if raw, merr := json.Marshal(result); merr == nil {
			rec.Result = raw
		} else {
			rec.State = model.OperationFailed
			rec.ErrorCode, rec.ErrorMessage = string(errdefs.CodeInternal), "encode result: "+merr.Error()
		}
	case cancelled:
		rec.State = model.OperationCancelled
		rec.ErrorCode, rec.ErrorMessage = string(errdefs.CodeUnavailable), "cancelled: "+err.Error()
	default:
		rec.State = model.OperationFailed
		rec.ErrorCode, rec.ErrorMessage = string(errdefs.CodeOf(err)), opid.TrimSuffix(err.Error(), rec.ID)
	}
	rec.UpdatedAt = now
	// Persist before anyone can see the end, so a client that saw it
	// finish never finds it "interrupted" after a daemon restart.
	r.persist(rec)

	r.mu.Lock()
	defer r.mu.Unlock()
	o.rec = rec
	o.finished = now
	if rec.State == model.OperationSucceeded {
		o.frac, o.stageIdx = 1, len(o.stages)-1
	}
	msg := string(rec.State)
	if rec.ErrorMessage != "" {
		msg += ": " + rec.ErrorMessage
	}
	r.addEventLocked(o, api.EventDone, msg)
}

func (r *Registry) persist(rec model.Operation) {
	ctx, cancel := context.WithTimeout(context.Background(), persistWait)
	defer cancel()
	if err := r.store.PutOperation(ctx, rec); err != nil {
		r.logger.WarnContext(opid.With(ctx, rec.ID), "operation record not saved", "error", err.Error())
	}
}

// addEventLocked appends an event and wakes status waiters.
func (r *Registry) addEventLocked(o *op, typ, msg string) {
	o.lastSeq++
	o.events = append(o.events, api.OperationEvent{
		Seq: o.lastSeq, Time: time.Now().UTC(), Type: typ, Stage: o.rec.Stage, Message: msg, Progress: o.progress(),
	})
	if len(o.events) > maxEvents {
		o.events = o.events[len(o.events)-maxEvents:]
	}
	close(o.changed)
	o.changed = make(chan struct{})
}

func (o *op) progress() float64 {
	if o.rec.State == model.OperationSucceeded {
		return 1
	}
	if len(o.stages) == 0 || o.stageIdx < 0 {
		return 0
	}
	return (float64(o.stageIdx) + o.frac) / float64(len(o.stages))
}

// Status returns an operation and its events after afterSeq, waiting up
// to wait for a new one when there is none yet and it is still running.
// An operation no longer in memory is read from the store, without events.
func (r *Registry) Status(ctx context.Context, id string, afterSeq int, wait time.Duration) (api.OperationStatus, error) {
	wait = min(wait, maxWait)
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	var gathered <-chan time.Time // set once news arrives while waiting
	waited, gatherDone := false, false
	for {
		r.mu.Lock()
		o, ok := r.ops[id]
		if !ok {
			r.mu.Unlock()
			rec, err := r.store.GetOperation(ctx, id)
			if err != nil {
				return api.OperationStatus{}, err
			}
			return api.OperationStatus{Operation: rec, Events: []api.OperationEvent{}, Progress: progressOf(rec)}, nil
		}
		news := o.lastSeq > afterSeq
		if o.rec.State.Done() || wait <= 0 || (news && (!waited || gatherDone)) {
			st := o.statusLocked(afterSeq)
			r.mu.Unlock()
			return st, nil
		}
		changed := o.changed
		r.mu.Unlock()
		if news && gathered == nil {
			g := time.NewTimer(gatherNews)
			defer g.Stop()
			gathered = g.C
		}
		waited = true
		select {
		case <-changed:
		case <-gathered:
			gatherDone = true
		case <-deadline.C:
			wait = 0
		case <-ctx.Done():
			return api.OperationStatus{}, ctx.Err()
		}
	}
}

func progressOf(rec model.Operation) float64 {
	if rec.State == model.OperationSucceeded {
		return 1
	}
	return 0
}

func (o *op) statusLocked(afterSeq int) api.OperationStatus {
	st := api.OperationStatus{Operation: o.rec, Stages: o.stages, Progress: o.progress(), LastSeq: o.lastSeq, Events: []api.OperationEvent{}}
	for _, e := range o.events {
		if e.Seq > afterSeq {
			st.Events = append(st.Events, e)
		}
	}
	return st
}

// Cancel asks a running operation to stop; it finishes as cancelled once
// its work has cleaned up. Cancelling a finished operation is a conflict.
func (r *Registry) Cancel(id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	o, ok := r.ops[id]
	if !ok {
		return fmt.Errorf("operation %q is not running: %w", id, errdefs.ErrNotFound)
	}
	if o.rec.State.Done() {
		return fmt.Errorf("operation %s has already %s: %w", id, o.rec.State, errdefs.ErrConflict)
	}
	o.cancel()
	return nil
}

// Running returns the running operations of kind on target.
func (r *Registry) Running(kind, target string) []model.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []model.Operation
	for _, o := range r.ops {
		if o.rec.Kind == kind && o.rec.Target == target && !o.rec.State.Done() {
			out = append(out, o.rec)
		}
	}
	return out
}

// Prune forgets finished operations older than keepDone (the store keeps
// their records).
func (r *Registry) Prune(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, o := range r.ops {
		if o.rec.State.Done() && now.Sub(o.finished) > keepDone {
			delete(r.ops, id)
		}
	}
}

// Shutdown cancels every running operation and waits, until ctx ends, for
// them to finish cleaning up.
func (r *Registry) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	for _, o := range r.ops {
		if !o.rec.State.Done() {
			o.cancel()
		}
	}
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("operations still running at shutdown: %w", ctx.Err())
	}
}

// Wait blocks until the operation id finishes, for tests and callers that
// run an operation to completion.
func (r *Registry) Wait(ctx context.Context, id string) (api.OperationStatus, error) {
	after := 0
	for {
		st, err := r.Status(ctx, id, after, maxWait)
		if err != nil || st.State.Done() {
			return st, err
		}
		after = st.LastSeq
	}
}

// Reporter is how an operation's work reports its progress.
type Reporter struct {
	reg *Registry
	op  *op
}

// ID is the operation's id (also its op id).
func (p *Reporter) ID() string { return p.op.rec.ID }

// Stage marks the start of the named stage (one of those given to Begin;
// another name is added after the current one) and persists the record.
func (p *Reporter) Stage(name string) {
	r, o := p.reg, p.op
	r.mu.Lock()
	idx := -1
	for i, s := range o.stages {
		if s == name {
			idx = i
		}
	}
	if idx < 0 {
		idx = o.stageIdx + 1
		o.stages = slices.Insert(slices.Clone(o.stages), idx, name)
	}
	o.stageIdx, o.frac = idx, 0
	o.rec.Stage = name
	o.rec.UpdatedAt = time.Now().UTC()
	r.addEventLocked(o, api.EventStage, name)
	rec := o.rec
	r.mu.Unlock()
	r.persist(rec)
}

// Detail reports a line of progress within the current stage; frac, when
// in [0,1], is how far the stage has got (pass -1 to leave it).
func (p *Reporter) Detail(msg string, frac float64) {
	r, o := p.reg, p.op
	r.mu.Lock()
	defer r.mu.Unlock()
	if frac >= 0 && frac <= 1 {
		o.frac = frac
	}
	r.addEventLocked(o, api.EventDetail, msg)
}

// Logged is a Reporter whose stages also go to an operation's log, so
// the daemon's journal shows what the client's progress shows.
type Logged struct {
	*Reporter
	Log *oplog.Log
}

// Stage marks the stage on the reporter and logs it.
func (l Logged) Stage(name string) {
	l.Reporter.Stage(name)
	l.Log.Stage(name)
}
