// Package memops is an in-memory operation store, for tests that run a
// real operation.Registry without a database.
package memops

import (
	"context"
	"fmt"
	"sync"

	"banger/internal/errdefs"
	"banger/internal/model"
)

// Store keeps operation records in memory; the zero value is ready.
type Store struct {
	mu   sync.Mutex
	recs map[string]model.Operation
}

// PutOperation records op.
func (s *Store) PutOperation(_ context.Context, op model.Operation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.recs == nil {
		s.recs = map[string]model.Operation{}
	}
	s.recs[op.ID] = op
	return nil
}

// GetOperation is the record of id; an unknown one is errdefs.ErrNotFound.
func (s *Store) GetOperation(_ context.Context, id string) (model.Operation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	op, ok := s.recs[id]
	if !ok {
		return op, fmt.Errorf("operation %q: %w", id, errdefs.ErrNotFound)
	}
	return op, nil
}
