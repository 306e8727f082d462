package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"banger/internal/model"
	"banger/internal/rpc"
)

// newDaemonLogger returns bangerd's JSON logger at the configured level,
// and the level's normalised name.
func newDaemonLogger(w io.Writer, rawLevel string) (*slog.Logger, string, error) {
	level, normalized, err := parseLogLevel(rawLevel)
	if err != nil {
		return nil, "", err
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})), normalized, nil
}

// parseLogLevel accepts debug, info (also the empty string), warn or
// warning, and error, in any case.
func parseLogLevel(raw string) (slog.Level, string, error) {
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

// WithOpID stores the per-RPC correlation id on ctx. It forwards to rpc
// so daemon code does not import rpc just for context plumbing; dispatch
// sets it on every request, and everything downstream — lifecycle steps,
// the helper client — reads it back with OpIDFromContext, so one id
// stitches the whole chain together.
func WithOpID(ctx context.Context, opID string) context.Context {
	return rpc.WithOpID(ctx, opID)
}

// OpIDFromContext returns the op id stored on ctx, or "".
func OpIDFromContext(ctx context.Context) string {
	return rpc.OpIDFromContext(ctx)
}

// beginOperation starts a logged operation. When ctx carries an op id,
// every record the returned operationLog writes includes it as "op_id",
// so the journal can be searched by the id a user saw in a CLI error.
func (d *Daemon) beginOperation(ctx context.Context, name string, attrs ...any) *operationLog {
	opID := OpIDFromContext(ctx)
	all := append([]any(nil), attrs...)
	if opID != "" {
		all = append([]any{"op_id", opID}, all...)
	}
	if d.logger != nil {
		d.logger.Info("operation started", append([]any{"operation", name}, all...)...)
	}
	now := time.Now()
	return &operationLog{logger: d.logger, name: name, started: now, last: now, attrs: all, opID: opID}
}

// operationLog writes the records of one operation: its stages with the
// time since the start and since the previous stage, then its end. It is
// used by one goroutine at a time.
type operationLog struct {
	logger  *slog.Logger
	name    string
	started time.Time
	last    time.Time
	attrs   []any
	opID    string
}

// OpID is the id the operation was started with, for stamping onto an
// outgoing error.
func (o *operationLog) OpID() string {
	if o == nil {
		return ""
	}
	return o.opID
}

func (o *operationLog) stage(stage string, attrs ...any) {
	o.stageAt(slog.LevelInfo, stage, attrs)
}

// debugStage records a stage only at debug level: for steps too frequent
// or too fine to be worth a line in normal operation.
func (o *operationLog) debugStage(stage string, attrs ...any) {
	o.stageAt(slog.LevelDebug, stage, attrs)
}

func (o *operationLog) stageAt(level slog.Level, stage string, attrs []any) {
	now := time.Now()
	o.log(level, "operation stage", append([]any{
		"stage", stage,
		"since_start_ms", now.Sub(o.started).Milliseconds(),
		"since_last_stage_ms", now.Sub(o.last).Milliseconds(),
	}, attrs...)...)
	o.last = now
}

func (o *operationLog) done(attrs ...any) {
	o.log(slog.LevelInfo, "operation completed",
		append([]any{"duration_ms", time.Since(o.started).Milliseconds()}, attrs...)...)
}

// fail records the operation's failure and returns err unchanged, so a
// handler can end with `return op.fail(err)`. A nil err records nothing.
func (o *operationLog) fail(err error, attrs ...any) error {
	if err == nil {
		return nil
	}
	o.log(slog.LevelError, "operation failed",
		append([]any{"duration_ms", time.Since(o.started).Milliseconds(), "error", err.Error()}, attrs...)...)
	return err
}

func (o *operationLog) log(level slog.Level, msg string, attrs ...any) {
	if o.logger == nil {
		return
	}
	base := append([]any{"operation", o.name}, o.attrs...)
	o.logger.Log(context.Background(), level, msg, append(base, attrs...)...)
}

// vmLogAttrs returns the durable identifying fields of a VM that are
// always safe to log. Transient handles (pid, tap) are logged by the
// lifecycle steps where they matter.
func vmLogAttrs(vm model.VMRecord) []any {
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

func imageLogAttrs(image model.Image) []any {
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

// annotateLogPath points the user at the log that explains err.
func annotateLogPath(err error, path string) error {
	if err == nil || strings.TrimSpace(path) == "" {
		return err
	}
	return fmt.Errorf("%w; inspect %s", err, path)
}
