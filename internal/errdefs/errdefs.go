// Package errdefs defines the sentinel errors banger's core returns.
// Code wraps them with context (fmt.Errorf("vm %q: %w", name,
// errdefs.ErrNotFound)); the RPC edge maps them to wire error codes in one
// place (internal/rpc), and clients get them back through errors.Is on
// the typed RPC error.
package errdefs

import "errors"

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
