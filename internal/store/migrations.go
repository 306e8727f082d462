package store

import (
	"context"
	"database/sql"
	"fmt"
)

// migration is one step of the schema. migrations[i] takes the database
// from user_version i to i+1. Append only: never edit or reorder a
// migration that has shipped, because databases in the field have already
// run it.
type migration struct {
	name string
	sql  string
}

var migrations = []migration{
	{
		name: "create images and vms",
		sql: `
CREATE TABLE images (
	id                                TEXT    NOT NULL PRIMARY KEY,
	name                              TEXT    NOT NULL UNIQUE,
	managed                           INTEGER NOT NULL DEFAULT 0,
	artifact_dir                      TEXT    NOT NULL DEFAULT '',
	rootfs_path                       TEXT    NOT NULL,
	work_seed_path                    TEXT    NOT NULL DEFAULT '',
	kernel_path                       TEXT    NOT NULL,
	initrd_path                       TEXT    NOT NULL DEFAULT '',
	modules_dir                       TEXT    NOT NULL DEFAULT '',
	build_size                        TEXT    NOT NULL DEFAULT '',
	seeded_ssh_public_key_fingerprint TEXT    NOT NULL DEFAULT '',
	created_at                        TEXT    NOT NULL,
	updated_at                        TEXT    NOT NULL
) STRICT;

-- image_id has no ON DELETE action: deleting an image a VM still boots
-- from must fail, not take the VM with it.
CREATE TABLE vms (
	id              TEXT NOT NULL PRIMARY KEY,
	name            TEXT NOT NULL UNIQUE,
	image_id        TEXT NOT NULL REFERENCES images (id),
	state           TEXT NOT NULL,
	created_at      TEXT NOT NULL,
	updated_at      TEXT NOT NULL,
	last_touched_at TEXT NOT NULL,
	spec            TEXT NOT NULL CHECK (json_valid(spec)),
	runtime         TEXT NOT NULL CHECK (json_valid(runtime)),
	stats           TEXT NOT NULL CHECK (json_valid(stats))
) STRICT;

CREATE INDEX vms_image_id ON vms (image_id);

-- Two VMs must never hold the same guest IP; VMs without one yet are
-- left out of the index.
CREATE UNIQUE INDEX vms_guest_ip ON vms (json_extract(runtime, '$.guest_ip'))
	WHERE json_extract(runtime, '$.guest_ip') <> '';
`,
	},
	{
		name: "create operations",
		sql: `
CREATE TABLE operations (
	id            TEXT NOT NULL PRIMARY KEY,
	kind          TEXT NOT NULL,
	target        TEXT NOT NULL,
	state         TEXT NOT NULL,
	stage         TEXT NOT NULL DEFAULT '',
	result        TEXT NOT NULL DEFAULT '',
	error_code    TEXT NOT NULL DEFAULT '',
	error_message TEXT NOT NULL DEFAULT '',
	created_at    TEXT NOT NULL,
	updated_at    TEXT NOT NULL
) STRICT;

CREATE INDEX operations_created_at ON operations (created_at);
`,
	},
	{
		name: "create workspaces",
		sql: `
-- A VM's workspace goes with it: deleting the VM deletes its row.
CREATE TABLE workspaces (
	vm_id            TEXT NOT NULL PRIMARY KEY REFERENCES vms (id) ON DELETE CASCADE,
	result           TEXT NOT NULL CHECK (json_valid(result)),
	harvested_commit TEXT NOT NULL DEFAULT '',
	harvested_at     TEXT NOT NULL DEFAULT '',
	prepared_tree    TEXT NOT NULL DEFAULT ''
) STRICT;
`,
	},
}

// SchemaTooNewError is returned by Open when the database was migrated by
// a newer banger than this one. Opening it anyway could corrupt data the
// newer schema relies on.
type SchemaTooNewError struct {
	Path      string
	Version   int // the database's user_version
	Supported int // the newest version this binary knows
}

func (e *SchemaTooNewError) Error() string {
	return fmt.Sprintf("database %s has schema version %d, newer than this banger understands (%d); upgrade banger",
		e.Path, e.Version, e.Supported)
}

// migrate applies the pending migrations, each in its own transaction that
// also bumps user_version, so a crash leaves the database at a version
// boundary.
func (s *Store) migrate(ctx context.Context) error {
	for {
		done, err := s.migrateOne(ctx)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

// migrateOne applies the next pending migration, if any, and reports
// whether the schema was already current. It reads user_version inside the
// write transaction, so two processes opening the same file cannot both
// apply the same step.
func (s *Store) migrateOne(ctx context.Context) (done bool, err error) {
	err = s.write(ctx, func(tx *sql.Tx) error {
		var version int
		if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
			return fmt.Errorf("migrate %s: read schema version: %w", s.path, err)
		}
		if version > len(migrations) {
			return &SchemaTooNewError{Path: s.path, Version: version, Supported: len(migrations)}
		}
		if version == len(migrations) {
			done = true
			return nil
		}
		m := migrations[version]
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("migrate %s to version %d (%s): %w", s.path, version+1, m.name, err)
		}
		// PRAGMA takes no bound parameters; version is an int we control.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", version+1)); err != nil {
			return fmt.Errorf("migrate %s to version %d: set schema version: %w", s.path, version+1, err)
		}
		return nil
	})
	return done, err
}
