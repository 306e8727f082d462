package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	fastjson "github.com/segmentio/encoding/json"

	"banger/internal/errdefs"
	"banger/internal/model"
)

const selectVMs = `SELECT id, name, image_id, state, created_at, updated_at,
	last_touched_at, spec, runtime, stats FROM vms`

// CreateVM inserts vm. A taken name, id or guest IP is
// errdefs.ErrConflict; an unknown ImageID is errdefs.ErrNotFound.
// vm.Runtime.State is stored as vm.State.
func (s *Store) CreateVM(ctx context.Context, vm model.VMRecord) error {
	args, err := vmArgs(vm)
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO vms (
	name, image_id, state, created_at, updated_at, last_touched_at,
	spec, runtime, stats, id
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
		if err != nil {
			return vmWriteError(ctx, tx, "create", vm, err)
		}
		return nil
	})
}

// GetVM returns the VM with exactly this id.
func (s *Store) GetVM(ctx context.Context, id string) (model.VMRecord, error) {
	if strings.TrimSpace(id) == "" {
		return model.VMRecord{}, fmt.Errorf("empty vm id: %w", errdefs.ErrInvalidArgument)
	}
	found, err := queryAll(ctx, s.reader, scanVM, selectVMs+" WHERE id = ?", id)
	if err != nil {
		return model.VMRecord{}, fmt.Errorf("get vm %q: %w", id, err)
	}
	if len(found) == 0 {
		return model.VMRecord{}, fmt.Errorf("vm %q: %w", id, errdefs.ErrNotFound)
	}
	return found[0], nil
}

// FindVM resolves what a user typed: an exact name, an exact id, or a
// unique id prefix of at least four hex digits, in that order. An
// ambiguous prefix is errdefs.ErrInvalidArgument.
func (s *Store) FindVM(ctx context.Context, ref string) (model.VMRecord, error) {
	return findByRef(ctx, s.reader, "vm", selectVMs, scanVM, ref)
}

// ListVMs returns every VM, oldest first, ties broken by name.
func (s *Store) ListVMs(ctx context.Context) ([]model.VMRecord, error) {
	// The count is only a size hint: a VM added in between is still listed.
	var n int
	if err := s.reader.QueryRowContext(ctx, "SELECT count(*) FROM vms").Scan(&n); err != nil {
		return nil, fmt.Errorf("list vms: %w", busyAsUnavailable(err))
	}
	vms, err := queryAllSized(ctx, s.reader, n, scanVM, selectVMs+" ORDER BY created_at, name")
	if err != nil {
		return nil, fmt.Errorf("list vms: %w", err)
	}
	return vms, nil
}

// VMsUsingImage returns the VMs built on the image with this id, in
// ListVMs order. An image no VM uses gives an empty list, not an error.
func (s *Store) VMsUsingImage(ctx context.Context, imageID string) ([]model.VMRecord, error) {
	vms, err := queryAll(ctx, s.reader, scanVM, selectVMs+" WHERE image_id = ? ORDER BY created_at, name", imageID)
	if err != nil {
		return nil, fmt.Errorf("list vms using image %q: %w", imageID, err)
	}
	return vms, nil
}

// UpdateVM overwrites every column of the VM with vm.ID, including
// CreatedAt. The store sets no timestamps; the caller bumps UpdatedAt and
// LastTouchedAt. vm.Runtime.State is stored as vm.State.
func (s *Store) UpdateVM(ctx context.Context, vm model.VMRecord) error {
	args, err := vmArgs(vm)
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE vms SET
	name = ?, image_id = ?, state = ?, created_at = ?, updated_at = ?,
	last_touched_at = ?, spec = ?, runtime = ?, stats = ?
WHERE id = ?`, args...)
		if err != nil {
			return vmWriteError(ctx, tx, "update", vm, err)
		}
		return requireRow(res, "vm", vm.ID)
	})
}

// DeleteVM removes the VM record with exactly this id.
func (s *Store) DeleteVM(ctx context.Context, id string) error {
	if strings.TrimSpace(id) == "" {
		return fmt.Errorf("empty vm id: %w", errdefs.ErrInvalidArgument)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM vms WHERE id = ?", id)
		if err != nil {
			return fmt.Errorf("delete vm %q: %w", id, busyAsUnavailable(err))
		}
		return requireRow(res, "vm", id)
	})
}

func validateVM(vm model.VMRecord) error {
	switch {
	case strings.TrimSpace(vm.ID) == "":
		return fmt.Errorf("vm %q: empty id: %w", vm.Name, errdefs.ErrInvalidArgument)
	case strings.TrimSpace(vm.Name) == "":
		return fmt.Errorf("vm %q: empty name: %w", vm.ID, errdefs.ErrInvalidArgument)
	case strings.TrimSpace(vm.ImageID) == "":
		return fmt.Errorf("vm %q: empty image id: %w", vm.Name, errdefs.ErrInvalidArgument)
	case !vm.State.Valid():
		return fmt.Errorf("vm %q: invalid state %q: %w", vm.Name, vm.State, errdefs.ErrInvalidArgument)
	}
	return nil
}

// vmArgs validates vm and lists its columns in the order CreateVM and
// UpdateVM bind them: every column but id, then id. This is where the
// runtime's copy of the state is forced to match the record's.
func vmArgs(vm model.VMRecord) ([]any, error) {
	if err := validateVM(vm); err != nil {
		return nil, err
	}
	vm.Runtime.State = vm.State
	vm.Stats.CollectedAt = vm.Stats.CollectedAt.UTC()
	spec, err := fastjson.Marshal(vm.Spec)
	if err != nil {
		return nil, fmt.Errorf("vm %q: encode spec: %w: %w", vm.Name, errdefs.ErrInvalidArgument, err)
	}
	runtime, err := fastjson.Marshal(vm.Runtime)
	if err != nil {
		return nil, fmt.Errorf("vm %q: encode runtime: %w: %w", vm.Name, errdefs.ErrInvalidArgument, err)
	}
	stats, err := fastjson.Marshal(vm.Stats)
	if err != nil {
		return nil, fmt.Errorf("vm %q: encode stats: %w: %w", vm.Name, errdefs.ErrInvalidArgument, err)
	}
	return []any{
		vm.Name, vm.ImageID, string(vm.State),
		formatTime(vm.CreatedAt), formatTime(vm.UpdatedAt), formatTime(vm.LastTouchedAt),
		string(spec), string(runtime), string(stats),
		vm.ID,
	}, nil
}

func scanVM(row rowScanner) (model.VMRecord, error) {
	var (
		vm                                  model.VMRecord
		state                               string
		createdAt, updatedAt, lastTouchedAt string
		spec, runtime, stats                []byte
		err                                 error
	)
	if err := row.Scan(&vm.ID, &vm.Name, &vm.ImageID, &state, &createdAt, &updatedAt,
		&lastTouchedAt, &spec, &runtime, &stats); err != nil {
		return model.VMRecord{}, fmt.Errorf("scan vm: %w", err)
	}
	vm.State = model.VMState(state)
	if vm.CreatedAt, err = parseTime("created_at", createdAt); err != nil {
		return model.VMRecord{}, fmt.Errorf("vm %q: %w", vm.ID, err)
	}
	if vm.UpdatedAt, err = parseTime("updated_at", updatedAt); err != nil {
		return model.VMRecord{}, fmt.Errorf("vm %q: %w", vm.ID, err)
	}
	if vm.LastTouchedAt, err = parseTime("last_touched_at", lastTouchedAt); err != nil {
		return model.VMRecord{}, fmt.Errorf("vm %q: %w", vm.ID, err)
	}
	if _, err := fastjson.Parse(spec, &vm.Spec, fastjson.ZeroCopy); err != nil {
		return model.VMRecord{}, fmt.Errorf("vm %q: decode spec: %w", vm.ID, err)
	}
	if _, err := fastjson.Parse(runtime, &vm.Runtime, fastjson.ZeroCopy); err != nil {
		return model.VMRecord{}, fmt.Errorf("vm %q: decode runtime: %w", vm.ID, err)
	}
	if _, err := fastjson.Parse(stats, &vm.Stats, fastjson.ZeroCopy); err != nil {
		return model.VMRecord{}, fmt.Errorf("vm %q: decode stats: %w", vm.ID, err)
	}
	// The state column is authoritative; the runtime copy only mirrors it.
	vm.Runtime.State = vm.State
	vm.Stats.CollectedAt = vm.Stats.CollectedAt.UTC()
	return vm, nil
}

// vmWriteError turns a failed insert or update into an error naming what
// collided: the name, the guest IP, the id, or a missing image. The
// constraint codes do not say which unique index failed, so it asks the
// database, inside the same transaction, which the write lock keeps
// consistent.
func vmWriteError(ctx context.Context, tx *sql.Tx, op string, vm model.VMRecord, cause error) error {
	if isForeignKeyViolation(cause) {
		return fmt.Errorf("%s vm %q: image %q: %w", op, vm.Name, vm.ImageID, errdefs.ErrNotFound)
	}
	if !isUniqueViolation(cause) {
		return fmt.Errorf("%s vm %q: %w", op, vm.Name, busyAsUnavailable(cause))
	}
	var holder string
	err := tx.QueryRowContext(ctx, "SELECT name FROM vms WHERE name = ? AND id <> ?", vm.Name, vm.ID).Scan(&holder)
	switch {
	case err == nil:
		return fmt.Errorf("vm name %q is already taken: %w", vm.Name, errdefs.ErrConflict)
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s vm %q: %w", op, vm.Name, err)
	}
	if ip := vm.Runtime.GuestIP; ip != "" {
		err := tx.QueryRowContext(ctx,
			"SELECT name FROM vms WHERE json_extract(runtime, '$.guest_ip') = ? AND id <> ?", ip, vm.ID).Scan(&holder)
		switch {
		case err == nil:
			return fmt.Errorf("guest ip %s is already assigned to vm %q: %w", ip, holder, errdefs.ErrConflict)
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("%s vm %q: %w", op, vm.Name, err)
		}
	}
	if op == "create" {
		return fmt.Errorf("vm id %q already exists: %w", vm.ID, errdefs.ErrConflict)
	}
	return fmt.Errorf("%s vm %q: %w: %w", op, vm.Name, errdefs.ErrConflict, cause)
}
