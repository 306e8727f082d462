// Package daemon is bangerd, the per-user daemon, as a composition root:
// Run opens the store, builds the services (VMs, images, host checks)
// from their dependencies in one visible order, and serves their methods
// on the daemon socket. The work is the services'; what lives here is
// the wiring, the RPC handlers that turn wire parameters into service
// calls, and the daemon's own methods (ping, status, shutdown,
// operations).
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"banger/internal/buildinfo"
	"banger/internal/doctor"
	"banger/internal/errdefs"
	"banger/internal/guestssh"
	"banger/internal/helperclient"
	"banger/internal/images"
	"banger/internal/lockfile"
	"banger/internal/model"
	"banger/internal/operation"
	"banger/internal/paths"
	"banger/internal/rpc"
	"banger/internal/store"
	"banger/internal/tappool"
	"banger/internal/vms"
	"banger/internal/workspace"
)

// The helper client is what the tap pool creates and deletes taps with,
// and what the VM service asks for NAT and overlays.
var (
	_ tappool.Allocator = helperclient.Client{}
	_ vms.Helper        = helperclient.Client{}
	_ vms.Taps          = (*tappool.Pool)(nil)
)

// Daemon is one running bangerd.
type Daemon struct {
	layout      paths.Layout
	cfg         model.DaemonConfig
	configFound bool
	logLevel    string
	logger      *slog.Logger
	store       *store.Store
	ownerUID    uint32
	started     time.Time

	helper  helperclient.Client
	tapPool *tappool.Pool
	ops     *operation.Registry

	guests *guestssh.Pool

	vms       *vms.Service
	images    *images.Service
	doctor    *doctor.Service
	workspace *workspace.Service

	// shutdown ends Serve; daemon.shutdown calls it after answering.
	shutdown context.CancelFunc
}

// Options is what Run needs: everything Main resolved from flags, the
// environment and the config file.
type Options struct {
	Layout      paths.Layout
	Config      model.DaemonConfig
	ConfigFound bool
	Logger      *slog.Logger
	LogLevel    string
}

// Run starts bangerd and serves until ctx is cancelled or a client calls
// daemon.shutdown. It refuses to start when another bangerd of this user
// holds the lock; a socket file left by a daemon that died is replaced.
func Run(ctx context.Context, opts Options) error {
	layout := opts.Layout
	if err := layout.EnsureRuntimeDir(); err != nil {
		return err
	}
	lock, err := lockfile.TryLock(layout.LockPath)
	if errors.Is(err, lockfile.ErrHeld) {
		return fmt.Errorf("bangerd is already running (pid %d): %w", lockfile.ReadPID(layout.LockPath), errdefs.ErrConflict)
	}
	if err != nil {
		return err
	}
	defer lock.Release()
	if err := lock.WritePID(os.Getpid()); err != nil {
		return fmt.Errorf("write pid to %s: %w", layout.LockPath, err)
	}
	if err := layout.EnsureStateDirs(); err != nil {
		return err
	}
	st, err := store.Open(ctx, layout.DBPath)
	if err != nil {
		return err
	}
	defer st.Close()
	ln, err := listenSocket(layout.SocketPath)
	if err != nil {
		return err
	}

	d := build(ctx, opts, st)
	d.recover(ctx)
	d.logStarted()
	// In the background: the daemon serves whether or not the helper
	// answers. After serving, the pool's ready taps are released.
	stopTapPool := d.tapPool.Run(ctx, d.freeTaps)
	err = d.Serve(ctx, ln)
	d.stopOperations()
	// VMs keep running: the next bangerd adopts them.
	d.vms.Close()
	d.guests.Close()
	stopTapPool()
	d.logger.Info("daemon stopped", "pid", os.Getpid(), "uptime_ms", time.Since(d.started).Milliseconds())
	return err
}

func (d *Daemon) logStarted() {
	d.logger.Info("daemon started",
		"pid", os.Getpid(),
		"version", buildinfo.Version(),
		"protocol_version", buildinfo.ProtocolVersion,
		"socket", d.layout.SocketPath,
		"db_path", d.layout.DBPath,
		"config_path", d.layout.ConfigFile,
		"config_found", d.configFound,
		"log_level", d.logLevel,
		"helper_socket", d.helper.Socket,
		"tap_pool_size", d.cfg.TapPoolSize)
}

// listenSocket binds the daemon socket. The caller holds the daemon lock,
// so a socket file already there is the leftover of a dead daemon and is
// removed; anything else at that path is left alone.
func listenSocket(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket; refusing to replace it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	// The runtime dir is 0700 already; the socket mode is belt and braces.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	return ln, nil
}

// The daemon socket's connection limits: room for one user's CLI calls,
// long polls and tools at once, but a runaway script cannot use up the
// daemon's descriptors. Silent and idle connections close after the
// rpc defaults.
const (
	maxConnsPerUID = 256
	maxConns       = 512
)

// Serve answers RPCs on ln until ctx is cancelled or daemon.shutdown is
// called, then drains in-flight requests and returns.
func (d *Daemon) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d.shutdown = cancel
	if d.started.IsZero() {
		d.started = time.Now()
	}
	srv := &rpc.Server{
		Methods:        d.methods(),
		Authorize:      d.authorize,
		Observe:        d.observeRPC,
		MaxConnsPerUID: maxConnsPerUID,
		MaxConns:       maxConns,
	}
	return srv.Serve(ctx, ln)
}

// authorize admits only the user the daemon runs as. The socket's
// directory is private already; this holds even if it were not.
func (d *Daemon) authorize(p rpc.Peer) error {
	if p.UID != d.ownerUID {
		return fmt.Errorf("uid %d may not use the banger daemon of uid %d", p.UID, d.ownerUID)
	}
	return nil
}

// observeRPC writes one record per failed RPC (with its op id, so a CLI
// error can be found in the log) and, at debug level, one per success.
func (d *Daemon) observeRPC(ctx context.Context, c rpc.CallInfo) {
	if c.Err == nil && !d.logger.Enabled(ctx, slog.LevelDebug) {
		return // the common case: nothing to log, nothing to build
	}
	attrs := []any{"method", c.Method, "op_id", c.OpID, "peer_uid", c.Peer.UID, "duration_ms", c.Duration.Milliseconds()}
	if c.Err != nil {
		d.logger.InfoContext(ctx, "rpc failed", append(attrs, "code", string(c.Err.Code), "error", c.Err.Message)...)
		return
	}
	d.logger.DebugContext(ctx, "rpc completed", attrs...)
}
