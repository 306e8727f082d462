package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"banger/internal/api"
	"banger/internal/model"
	"banger/internal/rpc"
)

// statusWait is how long one operation.status call waits for news.
const statusWait = 5 * time.Second

// followOperation shows an operation's progress until it ends and returns
// its final status; with --json each event is printed as a JSON line on
// stdout. See follow.
func (a *app) followOperation(ctx context.Context, socket, id string) (api.OperationStatus, error) {
	st, _, err := a.follow(ctx, socket, id, true)
	return st, err
}

// follow shows an operation's progress until it ends and returns its
// final status and how long it took by the daemon's clock (the total
// the progress shows). Each stage is shown with its duration, on a
// terminal as one line redrawn in place while it runs; with --json
// nothing is drawn, and jsonEvents prints each event as a JSON line on
// stdout. Interrupting (Ctrl-C) cancels the operation and waits for it
// to clean up; a second interrupt leaves it running and returns.
func (a *app) follow(ctx context.Context, socket, id string, jsonEvents bool) (api.OperationStatus, time.Duration, error) {
	r := newProgressRenderer(a.stderr, a.jsonOut)
	interrupted := false
	stopWatching := func() {}
	defer func() { stopWatching() }()
	after := 0
	// On a terminal, come back every second even without news, to keep
	// the spinner and the clock moving through long quiet stretches.
	wait := statusWait
	if r.tty && !r.quiet {
		wait = time.Second
	}
	for {
		callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), wait+30*time.Second)
		var st api.OperationStatus
		err := rpc.Call(callCtx, socket, api.MethodOperationStatus,
			api.OperationStatusParams{ID: id, AfterSeq: after, WaitMS: int(wait / time.Millisecond)}, &st)
		cancel()
		if err != nil {
			r.finish()
			return st, 0, err
		}
		if a.jsonOut && jsonEvents {
			for _, e := range st.Events {
				a.printJSONLine(e)
			}
		}
		r.status(st)
		if len(st.Events) == 0 {
			r.tick()
		}
		after = st.LastSeq
		if st.State.Done() {
			return st, r.total, nil
		}
		if ctx.Err() != nil && !interrupted {
			interrupted = true
			r.note("interrupted: cancelling " + id + " (interrupt again to leave it running)")
			if err := rpc.Call(context.WithoutCancel(ctx), socket, api.MethodOperationCancel, api.OperationCancelParams{ID: id}, nil); err != nil {
				r.finish()
				return st, 0, err
			}
			// A second interrupt while cancelling leaves it be.
			ctx, stopWatching = secondInterrupt()
		} else if ctx.Err() != nil {
			r.finish()
			return st, 0, fmt.Errorf("stopped following %s, which is still cancelling; see 'banger daemon logs'", id)
		}
	}
}

// operate begins an operation with method, says on stderr what it is
// doing (doing names the target with a %s; not with --json), follows
// its progress to the end and decodes its result into result.
func (a *app) operate(ctx context.Context, socket, method string, params any, doing string, result any) error {
	var op model.Operation
	if err := rpc.Call(ctx, socket, method, params, &op); err != nil {
		return err
	}
	if !a.jsonOut {
		fmt.Fprintf(a.stderr, doing+" (%s)\n", op.Target, op.ID)
	}
	st, err := a.followOperation(ctx, socket, op.ID)
	if err != nil {
		return err
	}
	if err := operationError(st); err != nil {
		return err
	}
	if err := json.Unmarshal(st.Result, result); err != nil {
		return fmt.Errorf("%s: its result: %w", st.Kind, err)
	}
	return nil
}

// operationError turns a failed operation's record into the error the
// CLI prints: its message and its op id.
func operationError(st api.OperationStatus) error {
	switch st.State {
	case model.OperationSucceeded:
		return nil
	case model.OperationCancelled:
		return &rpc.ErrorResponse{Code: rpc.Code(st.ErrorCode), Message: st.Kind + " " + st.Target + " " + st.ErrorMessage, OpID: st.ID}
	}
	return &rpc.ErrorResponse{Code: rpc.Code(st.ErrorCode), Message: st.Kind + " " + st.Target + " failed: " + st.ErrorMessage, OpID: st.ID}
}

func (a *app) printJSONLine(v any) {
	_ = json.NewEncoder(a.stdout).Encode(v)
}

// secondInterrupt returns a context cancelled by the next SIGINT or
// SIGTERM: the one that first interrupted the CLI keeps catching them.
func secondInterrupt() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
