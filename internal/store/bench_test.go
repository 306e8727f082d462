package store

import (
	"context"
	"testing"
	"time"

	"banger/internal/model"
)

// BenchmarkPutOperation: one operation record written, as a VM create
// does at each of its stages.
func BenchmarkPutOperation(b *testing.B) {
	s, err := Open(context.Background(), b.TempDir()+"/banger.db")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()
	op := model.Operation{ID: "op-0123456789ab", Kind: "vm.create", Target: "a", State: model.OperationRunning, CreatedAt: now, UpdatedAt: now}
	ctx := context.Background()
	for b.Loop() {
		op.Stage = "work disk"
		if err := s.PutOperation(ctx, op); err != nil {
			b.Fatal(err)
		}
	}
}
