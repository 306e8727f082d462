// Package helper is banger-helper, the small root process that does for
// bangerd only what needs root, from a closed list of operations. The
// uids it serves come from its own config file, never from a request; the
// kernel-reported peer uid of each connection is the only identity it
// trusts. It speaks the same rpc envelope as bangerd, adopts the caller's
// op id, and logs one "helper rpc completed" or "helper rpc failed" line
// per call.
package helper

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/BurntSushi/toml"

	"banger/internal/buildinfo"
	"banger/internal/rpc"
)

// Default locations, as `banger system install` lays them out.
const (
	DefaultConfigPath = "/etc/banger/helper.toml"
	DefaultSocketPath = "/run/banger/helper.sock"
)

// Config is the helper's own configuration.
type Config struct {
	// AllowedUIDs may call the helper. Root is not implied.
	AllowedUIDs []uint32 `toml:"allowed_uids"`
}

// StatusResult answers helper.status.
type StatusResult struct {
	Version         string `json:"version"`
	ProtocolVersion int    `json:"protocol_version"`
	PeerUID         uint32 `json:"peer_uid"`
}

// Helper is one running banger-helper.
type Helper struct {
	cfg    Config
	logger *slog.Logger
}

// uidList collects repeated --allow-uid flags.
type uidList []uint32

func (u *uidList) String() string { return fmt.Sprint(*u) }
func (u *uidList) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return fmt.Errorf("not a uid: %q", s)
	}
	*u = append(*u, uint32(n))
	return nil
}

// Main is banger-helper's entry point. It returns the exit status.
func Main(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("banger-helper", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", DefaultConfigPath, "helper config file (allowed_uids)")
	socketPath := fs.String("socket", DefaultSocketPath, "socket to listen on")
	var extraUIDs uidList
	fs.Var(&extraUIDs, "allow-uid", "also allow this uid (repeatable; for tests, instead of a config file)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "banger-helper: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stderr, "banger-helper %s (protocol %d)\n", buildinfo.Version(), buildinfo.ProtocolVersion)
		return 0
	}
	logger := slog.New(slog.NewJSONHandler(stderr, nil))

	cfg := Config{}
	if len(extraUIDs) == 0 || *configPath != DefaultConfigPath {
		var err error
		if cfg, err = LoadConfig(*configPath); err != nil {
			logger.Error("helper failed to start", "error", err.Error())
			return 1
		}
	}
	cfg.AllowedUIDs = append(cfg.AllowedUIDs, extraUIDs...)
	if len(cfg.AllowedUIDs) == 0 {
		logger.Error("helper failed to start", "error", "no allowed uids: set allowed_uids in "+*configPath+" or pass --allow-uid")
		return 1
	}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	h := &Helper{cfg: cfg, logger: logger}
	if err := h.ListenAndServe(ctx, *socketPath); err != nil {
		logger.Error("helper stopped", "error", err.Error())
		return 1
	}
	return 0
}

// LoadConfig reads the helper's TOML config; unknown keys are errors.
func LoadConfig(path string) (Config, error) {
	var cfg Config
	md, err := toml.DecodeFile(path, &cfg)
	if err != nil {
		return Config{}, fmt.Errorf("helper config %s: %w", path, err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, len(undecoded))
		for i, k := range undecoded {
			keys[i] = k.String()
		}
		return Config{}, fmt.Errorf("helper config %s: unknown key %s", path, strings.Join(keys, ", "))
	}
	return cfg, nil
}

// ListenAndServe binds socketPath (its directory created root-owned 0755,
// the socket itself open to all: who may call is decided per connection
// from SO_PEERCRED) and serves until ctx is cancelled.
func (h *Helper) ListenAndServe(ctx context.Context, socketPath string) error {
	if err := os.MkdirAll(filepath.Dir(socketPath), 0o755); err != nil {
		return fmt.Errorf("create socket dir: %w", err)
	}
	if fi, err := os.Lstat(socketPath); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return fmt.Errorf("%s exists and is not a socket; refusing to replace it", socketPath)
		}
		os.Remove(socketPath)
	}
	ln, err := net.Listen("unix", socketPath)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", socketPath, err)
	}
	if err := os.Chmod(socketPath, 0o666); err != nil {
		ln.Close()
		return fmt.Errorf("chmod %s: %w", socketPath, err)
	}
	h.logger.Info("helper started", "pid", os.Getpid(), "version", buildinfo.Version(),
		"socket", socketPath, "allowed_uids", h.cfg.AllowedUIDs)
	srv := &rpc.Server{
		Methods:   h.methods(),
		Authorize: h.authorize,
		Observe:   h.observe,
	}
	err = srv.Serve(ctx, ln)
	h.logger.Info("helper stopped", "pid", os.Getpid())
	return err
}

func (h *Helper) methods() map[string]rpc.Handler {
	return map[string]rpc.Handler{
		"helper.status": rpc.Typed(h.status),
	}
}

func (h *Helper) authorize(p rpc.Peer) error {
	if slices.Contains(h.cfg.AllowedUIDs, p.UID) {
		return nil
	}
	return fmt.Errorf("uid %d is not allowed to use banger-helper", p.UID)
}

// observe writes the one line per call that operators grep for.
func (h *Helper) observe(ctx context.Context, c rpc.CallInfo) {
	attrs := []any{"op_id", c.OpID, "method", c.Method, "peer_uid", c.Peer.UID, "peer_pid", c.Peer.PID, "duration_ms", c.Duration.Milliseconds()}
	if c.Err != nil {
		h.logger.WarnContext(ctx, "helper rpc failed", append(attrs, "code", string(c.Err.Code), "error", c.Err.Message)...)
		return
	}
	h.logger.InfoContext(ctx, "helper rpc completed", attrs...)
}

func (h *Helper) status(ctx context.Context, _ rpc.NoParams) (StatusResult, error) {
	peer, _ := rpc.PeerFromContext(ctx)
	return StatusResult{Version: buildinfo.Version(), ProtocolVersion: buildinfo.ProtocolVersion, PeerUID: peer.UID}, nil
}
