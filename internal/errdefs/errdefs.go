// Package errdefs defines the sentinel errors banger's core returns.
// Code wraps them with context (fmt.Errorf("vm %q: %w", name,
// errdefs.ErrNotFound)); the RPC edge maps them to wire error codes in one
// place (internal/rpc), and clients get them back through errors.Is on
// the typed RPC error.
package errdefs

import (
	"errors"
	"io/fs"
)

var (
	// ErrInvalidArgument: the request is malformed or a value is out of
	// range. Wire code bad_request.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotFound: the named object does not exist. Wire code not_found.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the object exists already, is in use, or is in a state
	// that forbids the operation. Wire code conflict.
	ErrConflict = errors.New("conflict")
	// ErrUnauthorized: the caller may not do this. Wire code unauthorized.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrUnavailable: a dependency (the helper, a VMM, the store) cannot
	// be reached right now; retrying later may work. Wire code
	// unavailable.
	ErrUnavailable = errors.New("unavailable")
)

// Mark returns err classified as kind (errors.Is(result, kind) holds)
// without adding kind's text to the message, for errors whose message
// already says it all.
func Mark(kind, err error) error {
	if err == nil {
		return nil
	}
	return marked{err: err, kind: kind}
}

type marked struct {
	err  error
	kind error
}

func (m marked) Error() string   { return m.err.Error() }
func (m marked) Unwrap() []error { return []error{m.err, m.kind} }

// Code is a stable, machine-readable error class, as the wire carries
// it. The set is small on purpose: clients branch on it, people read the
// message.
type Code string

const (
	CodeBadVersion    Code = "bad_version"
	CodeUnknownMethod Code = "unknown_method"
	CodeBadRequest    Code = "bad_request"
	CodeNotFound      Code = "not_found"
	CodeConflict      Code = "conflict"
	CodeUnauthorized  Code = "unauthorized"
	CodeUnavailable   Code = "unavailable"
	CodeInternal      Code = "internal"
)

// Known reports whether c is one of the codes above.
func (c Code) Known() bool {
	switch c {
	case CodeBadVersion, CodeUnknownMethod, CodeBadRequest, CodeNotFound,
		CodeConflict, CodeUnauthorized, CodeUnavailable, CodeInternal:
		return true
	}
	return false
}

// Coded is an error that carries its code already: an error that came
// back from another process keeps the code it was sent with.
type Coded interface {
	error
	ErrorCode() Code
}

// codeForSentinel is the one place the sentinels become codes.
var codeForSentinel = []struct {
	err  error
	code Code
}{
	{ErrInvalidArgument, CodeBadRequest},
	{ErrNotFound, CodeNotFound},
	{ErrConflict, CodeConflict},
	{ErrUnauthorized, CodeUnauthorized},
	{ErrUnavailable, CodeUnavailable},
}

// CodeOf classifies err by the outermost classification in its chain:
// a Coded error's own code, the kind an error was marked with, or a
// wrapped sentinel, whichever comes first walking from err inwards (so
// Mark(ErrInvalidArgument, fmt.Errorf("...: %w", notFound)) is
// bad_request); internal when there is none.
func CodeOf(err error) Code {
	if c, ok := codeIn(err); ok {
		return c
	}
	return CodeInternal
}

func codeIn(err error) (Code, bool) {
	if err == nil {
		return "", false
	}
	switch e := err.(type) {
	case Coded:
		return e.ErrorCode(), true
	case marked:
		if c, ok := codeIn(e.kind); ok {
			return c, true
		}
		return codeIn(e.err)
	}
	for _, e := range codeForSentinel {
		if err == e.err {
			return e.code, true
		}
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return codeIn(u.Unwrap())
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if c, ok := codeIn(e); ok {
				return c, true
			}
		}
	}
	return "", false
}

// SentinelFor is the sentinel a code stands for, nil when none does
// (bad_version, unknown_method, internal).
func SentinelFor(code Code) error {
	for _, e := range codeForSentinel {
		if e.code == code {
			return e.err
		}
	}
	return nil
}

// PathCause is the cause of a failed file operation without the path,
// for messages that name the path themselves ("kernel /x: no such file
// or directory", not the path twice). Other errors are returned as
// they are.
func PathCause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
