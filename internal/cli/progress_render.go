package cli

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"

	"banger/internal/api"
	"banger/internal/model"
)

// progressTick is the resolution of the times progress prints.
const progressTick = 100 * time.Millisecond

// progressRenderer draws an operation's events for people: each stage
// with how long it took, then the total. Every time comes from the
// daemon's event timestamps, not from when the CLI happened to hear of
// them, and each is printed as the difference of two instants rounded
// to progressTick since the operation began, so the stages' times add
// up to the total exactly. On a terminal the running stage is one line
// redrawn in place with a spinner and its time so far; otherwise a
// stage still running when its news arrives gets a line of its own, and
// every detail too.
type progressRenderer struct {
	w     io.Writer
	tty   bool
	quiet bool // --json: nothing is drawn
	now   func() time.Time
	width func() int // the terminal's columns, 0 when unknown

	begun     time.Time // when the operation began, by the daemon's clock
	fromStart bool      // the events seen began with the operation's first
	eventSeen bool
	stages    int // stages begun so far
	col       int // width of the stage column
	stage     string
	stageAt   time.Time
	detail    string // the running stage's last detail, redrawn by tick
	drawn     bool   // a spinner line is on the screen, unfinished
	spin      int
	ended     bool
	total     time.Duration
}

func newProgressRenderer(w io.Writer, jsonOut bool) *progressRenderer {
	r := &progressRenderer{w: w, quiet: jsonOut, now: time.Now, width: func() int { return 0 }, col: len("total")}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		r.tty = true
		r.width = func() int {
			if cols, _, err := term.GetSize(int(f.Fd())); err == nil {
				return cols
			}
			return 0
		}
	}
	return r
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// status takes in one operation.status answer: its events, in order,
// and the end when the operation is done.
func (r *progressRenderer) status(st api.OperationStatus) {
	if r.quiet || r.ended {
		return
	}
	if r.begun.IsZero() {
		r.begun = st.CreatedAt
	}
	for _, s := range st.Stages {
		r.col = max(r.col, len([]rune(s)))
	}
	for i, e := range st.Events {
		if !r.eventSeen {
			r.eventSeen, r.fromStart = true, e.Seq == 1
		}
		switch e.Type {
		case api.EventStage:
			r.endStage(e.Time, model.OperationSucceeded)
			// A stage that ends in the same answer needs no line of its
			// own before its result.
			r.beginStage(e.Stage, e.Time, i+1 < len(st.Events) && st.Events[i+1].Type != api.EventDetail)
		case api.EventDetail:
			if r.stage == "" && e.Stage != "" {
				r.beginStage(e.Stage, e.Time, false) // joined after it began
			}
			r.showDetail(e.Message)
		case api.EventDone:
			r.end(e.Time, st.State)
		}
	}
	if st.State.Done() && !r.ended {
		// Its end was not among the events seen (they are kept for a
		// while only): the record says when it ended.
		r.end(st.UpdatedAt, st.State)
	}
	if r.tty && r.stage != "" && !r.ended {
		r.draw()
	}
}

// mark is the instant t as printed: its time since the operation began,
// rounded.
func (r *progressRenderer) mark(t time.Time) time.Duration {
	return max(t.Sub(r.begun).Round(progressTick), 0)
}

func (r *progressRenderer) beginStage(name string, at time.Time, quick bool) {
	if r.stages == 0 && r.fromStart && at.After(r.begun) {
		// The first stage starts with the operation, so the stages
		// cover all of the total.
		at = r.begun
	}
	r.stages++
	r.stage, r.stageAt, r.detail = name, at, ""
	if !r.tty && !quick {
		fmt.Fprintf(r.w, "  %s...\n", name)
	}
}

// endStage prints the running stage with its duration, ✓ or, when the
// operation did not succeed, ✗.
func (r *progressRenderer) endStage(at time.Time, state model.OperationState) {
	if r.stage == "" {
		return
	}
	mark := "✓"
	if state != model.OperationSucceeded {
		mark = "✗"
	}
	r.line(fmt.Sprintf("%s %-*s %s", mark, r.col, r.stage, formatSeconds(r.mark(at)-r.mark(r.stageAt))))
	r.stage, r.detail = "", ""
}

// end closes the running stage and prints the total.
func (r *progressRenderer) end(at time.Time, state model.OperationState) {
	r.endStage(at, state)
	r.total = r.mark(at)
	label := "total"
	if state != model.OperationSucceeded {
		label = string(state)
	}
	r.line(fmt.Sprintf("  %-*s %s", r.col, label, formatSeconds(r.total)))
	r.ended = true
}

func (r *progressRenderer) showDetail(msg string) {
	r.detail = msg
	if !r.tty {
		fmt.Fprintf(r.w, "    %s\n", msg)
	}
}

// tick redraws the running stage's line with its time so far.
func (r *progressRenderer) tick() {
	if r.tty && !r.quiet && r.stage != "" && !r.ended {
		r.draw()
	}
}

// draw puts the running stage on the terminal's last line: the spinner,
// the stage, its time so far by the clock, and its last detail.
func (r *progressRenderer) draw() {
	r.spin = (r.spin + 1) % len(spinner)
	elapsed := max(r.now().Sub(r.stageAt).Truncate(progressTick), 0)
	line := fmt.Sprintf("%s %-*s %s  %s", spinner[r.spin], r.col, r.stage, formatSeconds(elapsed), r.detail)
	if w := r.width(); w > 4 && len([]rune(line)) > w-1 {
		line = string([]rune(line)[:w-2]) + "…"
	}
	fmt.Fprintf(r.w, "\r\033[K%s", line)
	r.drawn = true
}

// line prints a finished line, over the spinner's on a terminal.
func (r *progressRenderer) line(s string) {
	if r.tty && r.drawn {
		fmt.Fprint(r.w, "\r\033[K")
		r.drawn = false
	}
	fmt.Fprintln(r.w, s)
}

func (r *progressRenderer) note(msg string) {
	if r.drawn {
		fmt.Fprint(r.w, "\n")
		r.drawn = false
	}
	fmt.Fprintln(r.w, msg)
}

// finish ends an unfinished spinner line, when following stops early.
func (r *progressRenderer) finish() {
	if r.tty && r.drawn {
		fmt.Fprint(r.w, "\n")
		r.drawn = false
	}
}

// formatSeconds prints a duration as progress does: seconds with one
// decimal, right-aligned.
func formatSeconds(d time.Duration) string {
	return fmt.Sprintf("%5.1fs", d.Seconds())
}
