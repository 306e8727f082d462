// Package oplog is how bangerd's services log: a JSON logger whose
// records carry the op id of the context they are written under, and
// operation logs — one operation's start, its stages (with the time
// since the start and since the stage before) and its end — as the
// seed's logger wrote them. It sits below every service, so none of
// them needs the daemon to log. A stage record is also where the crash
// tests stop a process (internal/failpoint): the point "<operation>:
// <stage>" is reached as the stage is logged, "<operation>:done" as the
// operation's success is about to be.
package oplog

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"banger/internal/failpoint"
	"banger/internal/model"
	"banger/internal/opid"
)

// NewLogger returns bangerd's JSON logger at the configured level, and
// the level's normalised name. Every record written with a context that
// carries an op id gets it as "op_id".
func NewLogger(w io.Writer, rawLevel string) (*slog.Logger, string, error) {
	level, normalized, err := ParseLevel(rawLevel)
	if err != nil {
		return nil, "", err
	}
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
	return slog.New(opIDHandler{h}), normalized, nil
}

// ParseLevel accepts debug, info (also the empty string), warn or
// warning, and error, in any case.
func ParseLevel(raw string) (slog.Level, string, error) {
	switch strings.ToLower(strings.TrimSpace(raw)) {
	case "", "info":
		return slog.LevelInfo, "info", nil
	case "debug":
		return slog.LevelDebug, "debug", nil
	case "warn", "warning":
		return slog.LevelWarn, "warn", nil
	case "error":
		return slog.LevelError, "error", nil
	}
	return 0, "", fmt.Errorf("unsupported log_level %q (use debug, info, warn, or error)", raw)
}

// opIDHandler puts the context's op id first on every record that does
// not name one itself.
type opIDHandler struct{ slog.Handler }

func (h opIDHandler) Handle(ctx context.Context, r slog.Record) error {
	id := opid.From(ctx)
	if id == "" || hasOpID(r) {
		return h.Handler.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(slog.String("op_id", id))
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(a)
		return true
	})
	return h.Handler.Handle(ctx, out)
}

func (h opIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return opIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h opIDHandler) WithGroup(name string) slog.Handler {
	return opIDHandler{h.Handler.WithGroup(name)}
}

func hasOpID(r slog.Record) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == "op_id"
		return !found
	})
	return found
}

// Begin starts a logged operation. When ctx carries an op id, every
// record the returned Log writes includes it as "op_id", so the journal
// can be searched by the id a user saw in a CLI error. A nil logger
// writes nothing.
func Begin(ctx context.Context, logger *slog.Logger, name string, attrs ...any) *Log {
	id := opid.From(ctx)
	all := append([]any(nil), attrs...)
	if id != "" {
		all = append([]any{"op_id", id}, all...)
	}
	now := time.Now()
	l := &Log{ctx: ctx, logger: logger, name: name, started: now, last: now, attrs: all, opID: id}
	l.log(slog.LevelInfo, "operation started")
	return l
}

// Log writes the records of one operation. It is used by one goroutine
// at a time.
type Log struct {
	ctx     context.Context
	logger  *slog.Logger
	name    string
	started time.Time
	last    time.Time
	attrs   []any
	opID    string
}

// OpID is the id the operation was started with, for stamping onto an
// outgoing error.
func (l *Log) OpID() string {
	if l == nil {
		return ""
	}
	return l.opID
}

// With adds attributes to every later record of the operation: what
// became known once it began (a VM's id and address, say).
func (l *Log) With(attrs ...any) {
	l.attrs = append(l.attrs, attrs...)
}

// Stage records that the operation reached a stage.
func (l *Log) Stage(stage string, attrs ...any) {
	l.stageAt(slog.LevelInfo, stage, attrs)
}

// DebugStage records a stage only at debug level: for steps too
// frequent or too fine to be worth a line in normal operation.
func (l *Log) DebugStage(stage string, attrs ...any) {
	l.stageAt(slog.LevelDebug, stage, attrs)
}

func (l *Log) stageAt(level slog.Level, stage string, attrs []any) {
	now := time.Now()
	l.log(level, "operation stage", append([]any{
		"stage", stage,
		"since_start_ms", now.Sub(l.started).Milliseconds(),
		"since_last_stage_ms", now.Sub(l.last).Milliseconds(),
	}, attrs...)...)
	l.last = now
	failpoint.Hit(l.name + ":" + stage)
}

// Done records the operation's success.
func (l *Log) Done(attrs ...any) {
	failpoint.Hit(l.name + ":done")
	l.log(slog.LevelInfo, "operation completed",
		append([]any{"duration_ms", time.Since(l.started).Milliseconds()}, attrs...)...)
}

// Fail records the operation's failure and returns err unchanged, so a
// caller can end with `return op.Fail(err)`. A nil err records nothing.
func (l *Log) Fail(err error, attrs ...any) error {
	if err == nil {
		return nil
	}
	l.log(slog.LevelError, "operation failed",
		append([]any{"duration_ms", time.Since(l.started).Milliseconds(), "error", err.Error()}, attrs...)...)
	return err
}

// Warn records something that went wrong without failing the operation.
func (l *Log) Warn(msg string, attrs ...any) {
	l.log(slog.LevelWarn, msg, attrs...)
}

func (l *Log) log(level slog.Level, msg string, attrs ...any) {
	if l.logger == nil {
		return
	}
	base := append([]any{"operation", l.name}, l.attrs...)
	l.logger.Log(l.ctx, level, msg, append(base, attrs...)...)
}

// VMAttrs returns the durable identifying fields of a VM that are
// always safe to log. Transient handles (pid, tap) are logged by the
// lifecycle steps where they matter.
func VMAttrs(vm model.VMRecord) []any {
	attrs := []any{"vm_id", vm.ID, "vm_name", vm.Name, "image_id", vm.ImageID}
	if vm.Runtime.GuestIP != "" {
		attrs = append(attrs, "guest_ip", vm.Runtime.GuestIP)
	}
	if vm.Runtime.APISockPath != "" {
		attrs = append(attrs, "api_socket", vm.Runtime.APISockPath)
	}
	if vm.Runtime.LogPath != "" {
		attrs = append(attrs, "log_path", vm.Runtime.LogPath)
	}
	return attrs
}

// ImageAttrs is VMAttrs for an image.
func ImageAttrs(image model.Image) []any {
	attrs := []any{"image_id", image.ID, "image_name", image.Name}
	if image.ArtifactDir != "" {
		attrs = append(attrs, "artifact_dir", image.ArtifactDir)
	}
	if image.RootfsPath != "" {
		attrs = append(attrs, "rootfs_path", image.RootfsPath)
	}
	if image.WorkSeedPath != "" {
		attrs = append(attrs, "work_seed_path", image.WorkSeedPath)
	}
	return attrs
}

// AnnotateLogPath points the user at the log that explains err.
func AnnotateLogPath(err error, path string) error {
	if err == nil || strings.TrimSpace(path) == "" {
		return err
	}
	return fmt.Errorf("%w; inspect %s", err, path)
}
