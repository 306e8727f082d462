package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	fastjson "github.com/segmentio/encoding/json"

	"banger/internal/errdefs"
	"banger/internal/model"
)

// SaveWorkspace records the workspace prepared in a VM and the tree it
// was given. A VM has one workspace: a second is errdefs.ErrConflict;
// an unknown VM is errdefs.ErrNotFound.
func (s *Store) SaveWorkspace(ctx context.Context, ws model.WorkspacePrepareResult, preparedTree string) error {
	if strings.TrimSpace(ws.VMID) == "" {
		return fmt.Errorf("workspace without a vm id: %w", errdefs.ErrInvalidArgument)
	}
	result, err := fastjson.Marshal(ws)
	if err != nil {
		return fmt.Errorf("encode workspace: %w", err)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO workspaces (vm_id, result, prepared_tree) VALUES (?, ?, ?)`,
			ws.VMID, string(result), preparedTree)
		switch {
		case isUniqueViolation(err):
			return fmt.Errorf("vm %q has a workspace already: %w", ws.VMID, errdefs.ErrConflict)
		case isForeignKeyViolation(err):
			return fmt.Errorf("vm %q: %w", ws.VMID, errdefs.ErrNotFound)
		case err != nil:
			return fmt.Errorf("save workspace of vm %q: %w", ws.VMID, busyAsUnavailable(err))
		}
		return nil
	})
}

// RecordHarvest notes that a harvest set the VM's host branch to commit.
func (s *Store) RecordHarvest(ctx context.Context, vmID, commit string, at time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE workspaces SET harvested_commit = ?, harvested_at = ? WHERE vm_id = ?`,
			commit, formatTime(at), vmID)
		if err != nil {
			return fmt.Errorf("record harvest of vm %q: %w", vmID, busyAsUnavailable(err))
		}
		return requireRow(res, "workspace of vm", vmID)
	})
}

// GetWorkspace is the VM's workspace; a VM without one is
// errdefs.ErrNotFound.
func (s *Store) GetWorkspace(ctx context.Context, vmID string) (model.Workspace, error) {
	found, err := queryAll(ctx, s.reader, scanWorkspace,
		`SELECT result, harvested_commit, harvested_at, prepared_tree FROM workspaces WHERE vm_id = ?`, vmID)
	if err != nil {
		return model.Workspace{}, fmt.Errorf("get workspace of vm %q: %w", vmID, err)
	}
	if len(found) == 0 {
		return model.Workspace{}, fmt.Errorf("vm %q has no workspace: %w", vmID, errdefs.ErrNotFound)
	}
	return found[0], nil
}

// ListWorkspaces is every VM's workspace, by VM id.
func (s *Store) ListWorkspaces(ctx context.Context) (map[string]model.Workspace, error) {
	found, err := queryAll(ctx, s.reader, scanWorkspace, `SELECT result, harvested_commit, harvested_at, prepared_tree FROM workspaces`)
	if err != nil {
		return nil, fmt.Errorf("list workspaces: %w", err)
	}
	byVM := make(map[string]model.Workspace, len(found))
	for _, ws := range found {
		byVM[ws.VMID] = ws
	}
	return byVM, nil
}

func scanWorkspace(row rowScanner) (model.Workspace, error) {
	var ws model.Workspace
	var result, at string
	if err := row.Scan(&result, &ws.HarvestedCommit, &at, &ws.PreparedTree); err != nil {
		return ws, err
	}
	if err := fastjson.Unmarshal([]byte(result), &ws.WorkspacePrepareResult); err != nil {
		return ws, fmt.Errorf("decode workspace: %w", err)
	}
	if at != "" {
		t, err := parseTime("harvested_at", at)
		if err != nil {
			return ws, err
		}
		ws.HarvestedAt = t
	}
	return ws, nil
}
