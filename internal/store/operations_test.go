package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"banger/internal/errdefs"
	"banger/internal/model"
)

func TestOperations(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir()+"/b.db")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	op := model.Operation{ID: "op-000000000001", Kind: "image.build", Target: "default", State: model.OperationRunning,
		Stage: "bootstrap", CreatedAt: at, UpdatedAt: at}
	if err := s.PutOperation(ctx, op); err != nil {
		t.Fatal(err)
	}
	done := model.Operation{ID: "op-000000000002", Kind: "vm.create", Target: "dev", State: model.OperationSucceeded,
		Result: []byte(`{"id":"x"}`), CreatedAt: at, UpdatedAt: at}
	if err := s.PutOperation(ctx, done); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetOperation(ctx, op.ID)
	if err != nil || got.Stage != "bootstrap" || got.State != model.OperationRunning || !got.CreatedAt.Equal(at) {
		t.Fatalf("GetOperation = %+v, %v", got, err)
	}
	n, err := s.InterruptOperations(ctx, "bangerd restarted", at.Add(time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("InterruptOperations = %d, %v", n, err)
	}
	got, _ = s.GetOperation(ctx, op.ID)
	if got.State != model.OperationFailed || got.ErrorMessage != "bangerd restarted" || got.ErrorCode != "unavailable" {
		t.Errorf("interrupted = %+v", got)
	}
	if got, _ := s.GetOperation(ctx, done.ID); got.State != model.OperationSucceeded || string(got.Result) != `{"id":"x"}` {
		t.Errorf("a finished operation was touched: %+v", got)
	}
	if err := s.PruneOperations(ctx, at.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetOperation(ctx, done.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("pruned operation still there: %v", err)
	}
	if err := s.PutOperation(ctx, model.Operation{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("empty operation: %v", err)
	}
}
