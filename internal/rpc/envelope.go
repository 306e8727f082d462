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

	"banger/internal/errdefs"
	"banger/internal/opid"
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

// Code is a stable, machine-readable error class; the codes and the
// sentinels they stand for are errdefs' (one table, there).
type Code = errdefs.Code

const (
	CodeBadVersion    = errdefs.CodeBadVersion
	CodeUnknownMethod = errdefs.CodeUnknownMethod
	CodeBadRequest    = errdefs.CodeBadRequest
	CodeNotFound      = errdefs.CodeNotFound
	CodeConflict      = errdefs.CodeConflict
	CodeUnauthorized  = errdefs.CodeUnauthorized
	CodeUnavailable   = errdefs.CodeUnavailable
	CodeInternal      = errdefs.CodeInternal
)

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

// ErrorCode makes a remote error keep its code when it is passed on.
func (e *ErrorResponse) ErrorCode() Code { return e.Code }

// Is lets a client test a remote error against the core's sentinels:
// errors.Is(err, errdefs.ErrNotFound) holds for a not_found response.
func (e *ErrorResponse) Is(target error) bool {
	sentinel := errdefs.SentinelFor(e.Code)
	return sentinel != nil && target == sentinel
}

// NewError returns an ErrorResponse for code; handlers rarely need it,
// since returning a wrapped errdefs sentinel maps to the right code.
func NewError(code Code, message string) *ErrorResponse {
	return &ErrorResponse{Code: code, Message: message}
}

// AsErrorResponse maps err to the wire form a handler's error would take
// under opID: for errors that are reported later, such as the end of an
// asynchronous operation.
func AsErrorResponse(err error, opID string) *ErrorResponse {
	return toErrorResponse(err, opID)
}

// toErrorResponse maps a handler's error to the wire: its code is
// errdefs.CodeOf's (a remote error keeps its own), and the message is
// the whole error text, without a repeat of opID at its end (a
// downstream error under the same id is often passed through).
func toErrorResponse(err error, opID string) *ErrorResponse {
	return &ErrorResponse{Code: errdefs.CodeOf(err), Message: opid.TrimSuffix(err.Error(), opID), OpID: opID}
}
