// Package store owns banger's SQLite database: the schema and its
// migrations, and the image and VM records the daemon persists. It is the
// only package that speaks SQL; everything above it works with model types
// and errdefs sentinels.
//
// The database runs in WAL mode with a single writer: every write goes
// through one connection in a BEGIN IMMEDIATE transaction, so writers queue
// inside the process instead of failing with "database is locked", while
// reads use a separate query_only pool and never wait for a writer.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"banger/internal/errdefs"
)

// busyTimeout is how long a connection waits for another process (a second
// daemon, the sqlite3 shell) to release its lock before giving up.
const busyTimeout = 5 * time.Second

// Store is banger's database. Its methods are safe for concurrent use.
type Store struct {
	path   string
	writer *sql.DB // exactly one connection; every write goes through it
	reader *sql.DB // query_only pool for reads

	closeOnce sync.Once
	closeErr  error
}

// Open opens the database at path, creating it (mode 0600) and its parent
// directory (mode 0700) if they are missing, and brings the schema up to
// date. It fails if the database was written by a newer banger; see
// SchemaTooNewError.
func Open(ctx context.Context, path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := createFile(abs); err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}

	writer, err := sql.Open("sqlite", dsn(abs, writerPragmas))
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	// One connection, kept for the life of the store: SQLite allows one
	// writer at a time, and queueing on database/sql's pool is cheaper and
	// more predictable than retrying SQLITE_BUSY.
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)

	s := &Store{path: abs, writer: writer}
	if err := s.checkJournalMode(ctx); err != nil {
		writer.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		writer.Close()
		return nil, err
	}

	// The read pool opens only after the writer has switched the file to
	// WAL and migrated it, so readers never see a half-built schema.
	reader, err := sql.Open("sqlite", dsn(abs, readerPragmas))
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	reader.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)))
	reader.SetMaxIdleConns(max(4, runtime.GOMAXPROCS(0)))
	if err := reader.PingContext(ctx); err != nil {
		reader.Close()
		writer.Close()
		return nil, fmt.Errorf("open store %s: read pool: %w", abs, err)
	}
	s.reader = reader
	return s, nil
}

// Close closes both connection pools. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.reader != nil {
			errs = append(errs, s.reader.Close())
		}
		errs = append(errs, s.writer.Close())
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("close store %s: %w", s.path, err)
		}
	})
	return s.closeErr
}

// Path is the absolute path of the database file.
func (s *Store) Path() string { return s.path }

var (
	writerPragmas = url.Values{
		"_pragma": {
			fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()),
			"foreign_keys(1)",
			"journal_mode(WAL)",
			// NORMAL is durable against application crashes in WAL mode;
			// a power loss can roll back the last commits, which banger
			// recovers from on the next start like any other crash.
			"synchronous(NORMAL)",
		},
		"_txlock": {"immediate"},
	}
	readerPragmas = url.Values{
		"_pragma": {
			fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()),
			"foreign_keys(1)",
		},
		"_query_only": {"1"},
	}
)

// dsn builds a file: URI for modernc's driver. The path is URI-escaped so
// that '?', '#' and '%' in a directory name cannot be read as a query.
func dsn(path string, params url.Values) string {
	u := url.URL{Scheme: "file", Path: path, RawQuery: params.Encode()}
	return u.String()
}

// createFile makes the parent directory (0700) and an empty database file
// (0600) if they do not exist yet. SQLite would create the file itself,
// but with the umask's mode; its -wal and -shm files copy the database
// file's mode, so setting it here covers all three. An existing file's
// mode is left alone.
func createFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}

// checkJournalMode makes sure the journal_mode pragma took: SQLite reports
// the old mode rather than an error when a file system cannot do WAL, and
// without WAL the read pool would block writers.
func (s *Store) checkJournalMode(ctx context.Context) error {
	var mode string
	if err := s.writer.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("open store %s: %w", s.path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("open store %s: journal mode is %q, want wal (does the file system support shared memory?)", s.path, mode)
	}
	return nil
}

// write runs fn in a write transaction (BEGIN IMMEDIATE, from the DSN's
// _txlock) and commits it if fn returns nil.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return busyAsUnavailable(fmt.Errorf("begin write: %w", err))
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return s.fullAsNoSpace(err)
	}
	if err := tx.Commit(); err != nil {
		return s.fullAsNoSpace(busyAsUnavailable(fmt.Errorf("commit: %w", err)))
	}
	return nil
}

// fullAsNoSpace says what SQLite's "database or disk is full" means — the
// file system holding the store has no room — naming the file, and marks
// it errdefs.ErrUnavailable: nothing was written, and it works again once
// there is room.
func (s *Store) fullAsNoSpace(err error) error {
	if sqliteCode(err)&0xff != sqlite3.SQLITE_FULL && !errors.Is(err, syscall.ENOSPC) {
		return err
	}
	return fmt.Errorf("store %s: no space left on device: the file system holding it is full; nothing was changed (free some space there and try again): %w: %w",
		s.path, errdefs.ErrUnavailable, err)
}

// sqliteCode returns the extended SQLite result code behind err, or 0.
func sqliteCode(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code()
	}
	return 0
}

func isUniqueViolation(err error) bool {
	switch sqliteCode(err) {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return true
	}
	return false
}

func isForeignKeyViolation(err error) bool {
	return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// busyAsUnavailable marks a lock wait that outlasted busy_timeout as
// errdefs.ErrUnavailable: another process holds the database, and trying
// again later may work.
func busyAsUnavailable(err error) error {
	if sqliteCode(err)&0xff == sqlite3.SQLITE_BUSY {
		return fmt.Errorf("%w: %w", errdefs.ErrUnavailable, err)
	}
	return err
}

// timeLayout is RFC 3339 with a fixed nine-digit fraction. Unlike
// time.RFC3339Nano it does not trim trailing zeros, so the stored text
// sorts in time order and ORDER BY created_at is chronological.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

func formatTime(t time.Time) string {
	return t.UTC().Format(timeLayout)
}

func parseTime(column, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("column %s: %w", column, err)
	}
	return t.UTC(), nil
}

// rowScanner is what *sql.Row and *sql.Rows have in common.
type rowScanner interface {
	Scan(dest ...any) error
}

// queryAll runs a read on the read pool and scans every row with scan. The
// result is never nil, so it encodes as [] rather than null.
func queryAll[T any](ctx context.Context, db *sql.DB, scan func(rowScanner) (T, error), query string, args ...any) ([]T, error) {
	return queryAllSized(ctx, db, 0, scan, query, args...)
}

// queryAllSized is queryAll with room made for sizeHint rows up front:
// for a thousand VM records, growing the slice as rows come copied them
// (pointers and all, under the GC's write barrier) about twice over.
func queryAllSized[T any](ctx context.Context, db *sql.DB, sizeHint int, scan func(rowScanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, busyAsUnavailable(err)
	}
	defer rows.Close()
	out := make([]T, 0, sizeHint)
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		if len(out) == cap(out) {
			// Double: append grows large slices by a quarter, which for
			// a thousand VM records means copying them many times over.
			out = slices.Grow(out, max(cap(out), 16))
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, busyAsUnavailable(err)
	}
	return out, nil
}

// minIDPrefix is the shortest id prefix Find accepts.
const minIDPrefix = 4

// findByRef resolves a user's reference to one row of table: an exact
// name wins, then an exact id, then a unique id prefix of at least
// minIDPrefix hex digits. kind names the object in errors ("vm",
// "image").
func findByRef[T any](ctx context.Context, db *sql.DB, kind, selectFrom string, scan func(rowScanner) (T, error), ref string) (T, error) {
	var zero T
	if strings.TrimSpace(ref) == "" {
		return zero, fmt.Errorf("empty %s reference: %w", kind, errdefs.ErrInvalidArgument)
	}
	for _, where := range []string{" WHERE name = ?", " WHERE id = ?"} {
		found, err := queryAll(ctx, db, scan, selectFrom+where, ref)
		if err != nil {
			return zero, fmt.Errorf("find %s %q: %w", kind, ref, err)
		}
		if len(found) > 0 {
			return found[0], nil
		}
	}
	if prefix, ok := idPrefix(ref); ok {
		found, err := queryAll(ctx, db, scan, selectFrom+" WHERE substr(id, 1, ?) = ? ORDER BY id LIMIT 2", len(prefix), prefix)
		if err != nil {
			return zero, fmt.Errorf("find %s %q: %w", kind, ref, err)
		}
		switch len(found) {
		case 1:
			return found[0], nil
		case 2:
			return zero, fmt.Errorf("%s id prefix %q matches more than one %s: %w", kind, ref, kind, errdefs.ErrInvalidArgument)
		}
	}
	return zero, fmt.Errorf("%s %q: %w", kind, ref, errdefs.ErrNotFound)
}

// idPrefix reports whether ref can be an id prefix (hex, at least
// minIDPrefix long) and returns it lowercased, as ids are stored.
func idPrefix(ref string) (string, bool) {
	if len(ref) < minIDPrefix {
		return "", false
	}
	for _, c := range ref {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return "", false
		}
	}
	return strings.ToLower(ref), true
}

// requireRow turns an update or delete that touched nothing into
// errdefs.ErrNotFound.
func requireRow(res sql.Result, kind, id string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s %q: %w", kind, id, err)
	}
	if n == 0 {
		return fmt.Errorf("%s %q: %w", kind, id, errdefs.ErrNotFound)
	}
	return nil
}

// exists reports whether query returns at least one row within tx.
func exists(ctx context.Context, tx *sql.Tx, query string, args ...any) (bool, error) {
	var one int
	err := tx.QueryRowContext(ctx, query, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}
