package operation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"banger/internal/api"
	"banger/internal/errdefs"
	"banger/internal/model"
	"banger/internal/opid"
	"banger/internal/rpc"
)

// memStore is an in-memory Store that records every write.
type memStore struct {
	mu     sync.Mutex
	recs   map[string]model.Operation
	writes []model.Operation
}

func newMemStore() *memStore { return &memStore{recs: map[string]model.Operation{}} }

func (m *memStore) PutOperation(ctx context.Context, op model.Operation) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs[op.ID] = op
	m.writes = append(m.writes, op)
	return nil
}

func (m *memStore) GetOperation(ctx context.Context, id string) (model.Operation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	op, ok := m.recs[id]
	if !ok {
		return model.Operation{}, fmt.Errorf("operation %q: %w", id, errdefs.ErrNotFound)
	}
	return op, nil
}

func TestOperationRunsUnderTheBeginningOpID(t *testing.T) {
	st := newMemStore()
	reg := NewRegistry(st, nil)
	step := make(chan struct{})
	ctx, cancelReq := context.WithCancel(opid.With(context.Background(), "op-aaaaaaaaaaaa"))
	rec, err := reg.Begin(ctx, "image.build", "default", []string{"one", "two"}, func(ctx context.Context, r *Reporter) (any, error) {
		if got := opid.From(ctx); got != "op-aaaaaaaaaaaa" {
			return nil, fmt.Errorf("work ran under op id %q", got)
		}
		r.Stage("one")
		r.Detail("half way", 0.5)
		<-step
		r.Stage("two")
		return map[string]string{"name": "default"}, nil
	})
	if err != nil || rec.ID != "op-aaaaaaaaaaaa" || rec.State != model.OperationRunning {
		t.Fatalf("Begin = %+v, %v", rec, err)
	}
	// The request that began it ending does not stop it.
	cancelReq()

	// Long-poll: wait until the detail arrives.
	var s api.OperationStatus
	for s.LastSeq < 2 {
		s, err = reg.Status(context.Background(), rec.ID, s.LastSeq, time.Second)
		if err != nil {
			t.Fatal(err)
		}
	}
	if s.Stage != "one" || s.Progress != 0.25 || s.Events[len(s.Events)-1].Message != "half way" {
		t.Errorf("status mid-way = %+v", s)
	}
	close(step)
	final, err := reg.Wait(context.Background(), rec.ID)
	if err != nil || final.State != model.OperationSucceeded || final.Progress != 1 || string(final.Result) != `{"name":"default"}` {
		t.Fatalf("final = %+v, %v", final, err)
	}
	if last := final.Events[len(final.Events)-1]; last.Type != api.EventDone || last.Message != "succeeded" {
		t.Errorf("last event = %+v", last)
	}
	all, _ := reg.Status(context.Background(), rec.ID, 0, 0)
	var types []string
	for _, e := range all.Events {
		types = append(types, e.Type+":"+e.Stage)
	}
	if got := strings.Join(types, " "); got != "stage:one detail:one stage:two done:two" {
		t.Errorf("events = %s", got)
	}
	// Persisted at begin, at each stage, at the end — before the end was
	// visible.
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.writes) != 4 || st.recs[rec.ID].State != model.OperationSucceeded {
		t.Errorf("store writes = %d, final %+v", len(st.writes), st.recs[rec.ID])
	}
}

func TestOperationFailureKeepsCode(t *testing.T) {
	reg := NewRegistry(newMemStore(), nil)
	rec, _ := reg.Begin(context.Background(), "image.build", "x", nil, func(ctx context.Context, r *Reporter) (any, error) {
		return nil, fmt.Errorf("image %q: %w", "x", errdefs.ErrConflict)
	})
	s, _ := reg.Wait(context.Background(), rec.ID)
	if s.State != model.OperationFailed || s.ErrorCode != string(rpc.CodeConflict) || s.ErrorMessage != `image "x": conflict` {
		t.Errorf("failed op = %+v", s.Operation)
	}
	rec, _ = reg.Begin(context.Background(), "image.build", "y", nil, func(ctx context.Context, r *Reporter) (any, error) {
		panic("boom")
	})
	s, _ = reg.Wait(context.Background(), rec.ID)
	if s.State != model.OperationFailed || !strings.Contains(s.ErrorMessage, "operation panic: boom") {
		t.Errorf("panicking op = %+v", s.Operation)
	}
}

func TestCancelAndShutdown(t *testing.T) {
	reg := NewRegistry(newMemStore(), nil)
	cleaned := make(chan struct{})
	work := func(ctx context.Context, r *Reporter) (any, error) {
		r.Stage("wait")
		<-ctx.Done()
		close(cleaned)
		return nil, ctx.Err()
	}
	rec, _ := reg.Begin(context.Background(), "vm.create", "a", []string{"wait"}, work)
	if err := reg.Cancel(rec.ID); err != nil {
		t.Fatal(err)
	}
	s, _ := reg.Wait(context.Background(), rec.ID)
	<-cleaned
	if s.State != model.OperationCancelled {
		t.Errorf("cancelled op = %+v", s.Operation)
	}
	if err := reg.Cancel(rec.ID); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("cancel of a finished op: %v", err)
	}
	if err := reg.Cancel("op-nope"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("cancel of an unknown op: %v", err)
	}

	cleaned = make(chan struct{})
	rec, _ = reg.Begin(context.Background(), "vm.create", "b", nil, work)
	if got := reg.Running("vm.create", "b"); len(got) != 1 {
		t.Errorf("Running = %v", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := reg.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	<-cleaned
}

func TestStatusFromStoreAfterPrune(t *testing.T) {
	st := newMemStore()
	reg := NewRegistry(st, nil)
	rec, _ := reg.Begin(context.Background(), "image.build", "x", nil, func(ctx context.Context, r *Reporter) (any, error) { return 1, nil })
	reg.Wait(context.Background(), rec.ID)
	reg.Prune(time.Now().Add(time.Hour))
	s, err := reg.Status(context.Background(), rec.ID, 0, time.Second)
	if err != nil || s.State != model.OperationSucceeded || len(s.Events) != 0 {
		t.Errorf("status from store = %+v, %v", s, err)
	}
	if _, err := reg.Status(context.Background(), "op-missing", 0, 0); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("unknown op: %v", err)
	}
}

func TestStatusWaitTimesOut(t *testing.T) {
	reg := NewRegistry(newMemStore(), nil)
	block := make(chan struct{})
	defer close(block)
	rec, _ := reg.Begin(context.Background(), "x", "y", nil, func(ctx context.Context, r *Reporter) (any, error) { <-block; return nil, nil })
	start := time.Now()
	s, err := reg.Status(context.Background(), rec.ID, 0, 50*time.Millisecond)
	if err != nil || s.State != model.OperationRunning || len(s.Events) != 0 {
		t.Errorf("status = %+v, %v", s, err)
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > 2*time.Second {
		t.Errorf("waited %v for a 50ms wait", d)
	}
}

func TestWaitingStatusGathersNewsThatFollows(t *testing.T) {
	reg := NewRegistry(newMemStore(), nil)
	go1, block := make(chan struct{}), make(chan struct{})
	defer close(block)
	rec, _ := reg.Begin(context.Background(), "x", "y", []string{"a", "b", "c"}, func(ctx context.Context, r *Reporter) (any, error) {
		<-go1
		r.Stage("a")
		r.Stage("b")
		time.Sleep(2 * time.Millisecond)
		r.Stage("c")
		<-block
		return nil, nil
	})
	first, _ := reg.Status(context.Background(), rec.ID, 0, 0)
	close(go1)
	s, err := reg.Status(context.Background(), rec.ID, first.LastSeq, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var stages []string
	for _, e := range s.Events {
		stages = append(stages, e.Message)
	}
	if len(s.Events) != 3 {
		t.Errorf("one waiting call answered with %d events %q, want the 3 stages that came within %v", len(s.Events), stages, gatherNews)
	}
	// A call that does not wait answers with what there is, at once.
	start := time.Now()
	if _, err := reg.Status(context.Background(), rec.ID, 0, 0); err != nil || time.Since(start) > gatherNews {
		t.Errorf("a non-waiting call took %v (%v)", time.Since(start), err)
	}
}
