// Package opid owns the op id: the correlation id of one operation,
// minted once ("op-" and 12 hex digits) and carried on the context from
// the RPC dispatch that starts an operation through every service's log
// records to the helper's, so one id finds a CLI error, the daemon's log
// lines and the helper's. It sits below everything that logs or calls,
// so that services need not import the RPC package to read it.
package opid

import (
	"context"
	"fmt"
	"strings"
	"time"

	"banger/internal/model"
)

// Prefix starts every minted op id.
const Prefix = "op-"

type key struct{}

// With stores id on ctx as the operation's op id.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, key{}, id)
}

// From returns the op id stored on ctx, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(key{}).(string)
	return id
}

// New mints an op id (model.NewOpID's format). It never fails:
// crypto/rand does not fail on Linux ≥ 3.17, and should it, an id from
// the clock keeps the invariant that every operation has one.
func New() string {
	id, err := model.NewOpID()
	if err != nil {
		return fmt.Sprintf("%s%012x", Prefix, time.Now().UnixNano()&0xffffffffffff)
	}
	return id
}

// Fresh returns ctx with a newly minted op id: for work the daemon
// starts itself (recovery, a background refill, a VMM that exited), so
// its log lines and the helper's can be traced back too.
func Fresh(ctx context.Context) context.Context {
	return With(ctx, New())
}

// Valid bounds what a client may send as an op id: it lands verbatim in
// log lines, so it must be short and plain.
func Valid(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// TrimSuffix removes " (id)" from the end of msg, as often as it is
// there: an error passed through under the same op id would otherwise
// say it twice.
func TrimSuffix(msg, id string) string {
	if id == "" {
		return msg
	}
	suffix := " (" + id + ")"
	for strings.HasSuffix(msg, suffix) {
		msg = strings.TrimSuffix(msg, suffix)
	}
	return msg
}
