// Package rpc is the wire protocol shared by the two hops banger has:
// CLI→daemon and daemon→root helper. Both speak newline-delimited JSON
// over a unix socket: a Request{version, method, params, op_id} answered
// by a Response carrying either a result or an ErrorResponse{code,
// message, op_id}.
//
// One op id threads through a whole operation: the server mints one at
// dispatch entry for every request that arrives without one and puts it
// on the context; Call forwards the context's id on outgoing requests;
// every error response is stamped with it, and ErrorResponse.Error ends
// with "(op-…)". A CLI error, the daemon's log and the helper's log can
// therefore be stitched together with one grep.
package rpc

import (
	"encoding/json"
	"errors"

	"banger/internal/errdefs"
)

// Request is one call.
type Request struct {
	Version int             `json:"version"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params,omitempty"`
	OpID    string          `json:"op_id,omitempty"`
}

// Response answers one Request: Result on success, Error otherwise. OpID
// is the id the server dispatched the request under, on success too, so
// a client can quote it for a long operation that worked.
type Response struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  *ErrorResponse  `json:"error,omitempty"`
	OpID   string          `json:"op_id,omitempty"`
}

// Code is a stable, machine-readable error class. The set is small on
// purpose: clients branch on it, people read the message.
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

// ErrorResponse is a failed call as it travels on the wire, and the typed
// error Call returns for it (reachable with errors.As).
type ErrorResponse struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	OpID    string `json:"op_id,omitempty"`
}

// Error returns the message, followed by "(op-…)" when the op id is set,
// so anything that prints the error shows the id to grep logs for.
func (e *ErrorResponse) Error() string {
	if e.OpID == "" {
		return e.Message
	}
	return e.Message + " (" + e.OpID + ")"
}

// Is lets a client test a remote error against the core's sentinels:
// errors.Is(err, errdefs.ErrNotFound) holds for a not_found response.
func (e *ErrorResponse) Is(target error) bool {
	sentinel, ok := sentinelForCode[e.Code]
	return ok && target == sentinel
}

// NewError returns an ErrorResponse for code; handlers rarely need it,
// since returning a wrapped errdefs sentinel maps to the right code.
func NewError(code Code, message string) *ErrorResponse {
	return &ErrorResponse{Code: code, Message: message}
}

// codeForSentinel is the one place the core's sentinel errors become wire
// codes; sentinelForCode is its inverse for clients.
var codeForSentinel = []struct {
	err  error
	code Code
}{
	{errdefs.ErrInvalidArgument, CodeBadRequest},
	{errdefs.ErrNotFound, CodeNotFound},
	{errdefs.ErrConflict, CodeConflict},
	{errdefs.ErrUnauthorized, CodeUnauthorized},
	{errdefs.ErrUnavailable, CodeUnavailable},
}

var sentinelForCode = func() map[Code]error {
	m := make(map[Code]error, len(codeForSentinel))
	for _, e := range codeForSentinel {
		m[e.code] = e.err
	}
	return m
}()

// AsErrorResponse maps err to the wire form a handler's error would take
// under opID: for errors that are reported later, such as the end of an
// asynchronous operation.
func AsErrorResponse(err error, opID string) *ErrorResponse {
	return toErrorResponse(err, opID)
}

// toErrorResponse maps a handler's error to the wire. An *ErrorResponse
// anywhere in the chain keeps its code (its message becomes the whole
// error text, so context added while wrapping is kept); a wrapped
// sentinel gets its code; anything else is internal.
func toErrorResponse(err error, opID string) *ErrorResponse {
	out := &ErrorResponse{Code: CodeInternal, Message: err.Error(), OpID: opID}
	var remote *ErrorResponse
	if errors.As(err, &remote) {
		out.Code = remote.Code
		if remote.OpID != "" && remote.OpID == opID {
			// Avoid "(op-x) (op-x)" when a downstream error with the
			// same id is passed through.
			out.Message = trimOpIDSuffix(err.Error(), opID)
		}
		return out
	}
	for _, e := range codeForSentinel {
		if errors.Is(err, e.err) {
			out.Code = e.code
			break
		}
	}
	return out
}

func trimOpIDSuffix(msg, opID string) string {
	suffix := " (" + opID + ")"
	for len(msg) >= len(suffix) && msg[len(msg)-len(suffix):] == suffix {
		msg = msg[:len(msg)-len(suffix)]
	}
	return msg
}
