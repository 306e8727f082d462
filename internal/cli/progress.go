package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/term"

	"banger/internal/api"
	"banger/internal/model"
	"banger/internal/rpc"
)

// statusWait is how long one operation.status call waits for news.
const statusWait = 5 * time.Second

// followOperation shows an operation's progress until it ends and returns
// its final status. On a terminal, the current stage is one line redrawn
// in place; otherwise each stage and detail is a line of its own; with
// --json each event is printed as a JSON line on stdout. Interrupting
// (Ctrl-C) cancels the operation and waits for it to clean up; a second
// interrupt leaves it running and returns.
func (a *app) followOperation(ctx context.Context, socket, id string) (api.OperationStatus, error) {
	r := newProgressRenderer(a.stderr, a.jsonOut)
	interrupted := false
	stopWatching := func() {}
	defer func() { stopWatching() }()
	after := 0
	// On a terminal, come back every second even without news, to keep
	// the spinner and the clock moving through long quiet stretches.
	wait := statusWait
	if r.tty && !a.jsonOut {
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
			return st, err
		}
		for _, e := range st.Events {
			if a.jsonOut {
				a.printJSONLine(e)
			} else {
				r.event(e)
			}
		}
		if len(st.Events) == 0 {
			r.tick()
		}
		after = st.LastSeq
		if st.State.Done() {
			r.finish()
			return st, nil
		}
		if ctx.Err() != nil && !interrupted {
			interrupted = true
			r.note("interrupted: cancelling " + id + " (interrupt again to leave it running)")
			if err := rpc.Call(context.WithoutCancel(ctx), socket, api.MethodOperationCancel, api.OperationCancelParams{ID: id}, nil); err != nil {
				r.finish()
				return st, err
			}
			// A second interrupt while cancelling leaves it be.
			ctx, stopWatching = secondInterrupt()
		} else if ctx.Err() != nil {
			r.finish()
			return st, fmt.Errorf("stopped following %s, which is still cancelling; see 'banger daemon logs'", id)
		}
	}
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

// progressRenderer draws operation events for people.
type progressRenderer struct {
	w       io.Writer
	tty     bool
	quiet   bool // --json: events go to stdout as JSON instead
	start   time.Time
	stage   string
	stageAt time.Time
	detail  string // the current stage's last detail, redrawn by tick
	drawn   bool
	spin    int
}

func newProgressRenderer(w io.Writer, jsonOut bool) *progressRenderer {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	return &progressRenderer{w: w, tty: tty, quiet: jsonOut, start: time.Now()}
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func (r *progressRenderer) event(e api.OperationEvent) {
	if r.quiet {
		return
	}
	switch e.Type {
	case api.EventStage:
		r.endStage()
		r.stage, r.stageAt = e.Stage, time.Now()
		r.draw("")
	case api.EventDetail:
		r.draw(e.Message)
	case api.EventDone:
		r.endStage()
	}
}

// tick redraws the current stage line with the time now.
func (r *progressRenderer) tick() {
	if r.tty && !r.quiet && r.stage != "" {
		r.draw(r.detail)
	}
}

func (r *progressRenderer) draw(detail string) {
	r.detail = detail
	elapsed := time.Since(r.start).Round(100 * time.Millisecond)
	if !r.tty {
		if detail == "" {
			fmt.Fprintf(r.w, "[%6.1fs] %s\n", elapsed.Seconds(), r.stage)
		} else {
			fmt.Fprintf(r.w, "[%6.1fs]   %s\n", elapsed.Seconds(), detail)
		}
		return
	}
	r.spin = (r.spin + 1) % len(spinner)
	line := fmt.Sprintf("%s %-10s %6.1fs  %s", spinner[r.spin], r.stage, elapsed.Seconds(), detail)
	if w, _, err := term.GetSize(int(r.w.(*os.File).Fd())); err == nil && w > 4 && len([]rune(line)) > w-1 {
		line = string([]rune(line)[:w-2]) + "…"
	}
	fmt.Fprintf(r.w, "\r\033[K%s", line)
	r.drawn = true
}

// endStage prints the finished stage with its duration.
func (r *progressRenderer) endStage() {
	if r.stage == "" || !r.tty {
		return
	}
	fmt.Fprintf(r.w, "\r\033[K✓ %-10s %6.1fs\n", r.stage, time.Since(r.stageAt).Seconds())
	r.stage, r.drawn = "", false
}

func (r *progressRenderer) note(msg string) {
	if r.drawn {
		fmt.Fprint(r.w, "\n")
		r.drawn = false
	}
	fmt.Fprintln(r.w, msg)
}

func (r *progressRenderer) finish() {
	if r.tty && r.drawn {
		fmt.Fprint(r.w, "\n")
		r.drawn = false
	}
}

// formatBytes writes a byte count the way people read disk sizes.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// secondInterrupt returns a context cancelled by the next SIGINT or
// SIGTERM: the one that first interrupted the CLI keeps catching them.
func secondInterrupt() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
