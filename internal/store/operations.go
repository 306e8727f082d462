package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"banger/internal/errdefs"
	"banger/internal/model"
)

const selectOperations = `SELECT id, kind, target, state, stage, result,
	error_code, error_message, created_at, updated_at FROM operations`

// PutOperation inserts or replaces the record of an operation.
func (s *Store) PutOperation(ctx context.Context, op model.Operation) error {
	if strings.TrimSpace(op.ID) == "" || op.Kind == "" {
		return fmt.Errorf("operation %q: empty id or kind: %w", op.ID, errdefs.ErrInvalidArgument)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO operations (
	id, kind, target, state, stage, result, error_code, error_message, created_at, updated_at
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			op.ID, op.Kind, op.Target, string(op.State), op.Stage, string(op.Result),
			op.ErrorCode, op.ErrorMessage, formatTime(op.CreatedAt), formatTime(op.UpdatedAt))
		if err != nil {
			return fmt.Errorf("put operation %s: %w", op.ID, busyAsUnavailable(err))
		}
		return nil
	})
}

// GetOperation returns the operation with this id.
func (s *Store) GetOperation(ctx context.Context, id string) (model.Operation, error) {
	found, err := queryAll(ctx, s.reader, scanOperation, selectOperations+" WHERE id = ?", id)
	if err != nil {
		return model.Operation{}, fmt.Errorf("get operation %q: %w", id, err)
	}
	if len(found) == 0 {
		return model.Operation{}, fmt.Errorf("operation %q: %w", id, errdefs.ErrNotFound)
	}
	return found[0], nil
}

// InterruptOperations marks every operation still recorded as running as
// failed with reason: run at daemon start, when none can be running.
func (s *Store) InterruptOperations(ctx context.Context, reason string, at time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE operations SET state = ?, error_code = 'unavailable',
	error_message = ?, updated_at = ? WHERE state = ?`,
			string(model.OperationFailed), reason, formatTime(at), string(model.OperationRunning))
		if err != nil {
			return fmt.Errorf("interrupt operations: %w", busyAsUnavailable(err))
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// PruneOperations deletes finished operations last updated before cutoff.
func (s *Store) PruneOperations(ctx context.Context, cutoff time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM operations WHERE state <> ? AND updated_at < ?",
			string(model.OperationRunning), formatTime(cutoff))
		if err != nil {
			return fmt.Errorf("prune operations: %w", busyAsUnavailable(err))
		}
		return nil
	})
}

func scanOperation(row rowScanner) (model.Operation, error) {
	var op model.Operation
	var state, result, created, updated string
	if err := row.Scan(&op.ID, &op.Kind, &op.Target, &state, &op.Stage, &result,
		&op.ErrorCode, &op.ErrorMessage, &created, &updated); err != nil {
		return model.Operation{}, err
	}
	op.State = model.OperationState(state)
	if result != "" {
		op.Result = []byte(result)
	}
	var err error
	if op.CreatedAt, err = parseTime("created_at", created); err != nil {
		return model.Operation{}, err
	}
	if op.UpdatedAt, err = parseTime("updated_at", updated); err != nil {
		return model.Operation{}, err
	}
	return op, nil
}
