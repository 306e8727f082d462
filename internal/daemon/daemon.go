// Package daemon is bangerd, the per-user daemon: it owns the store, the
// daemon socket and, as banger grows, the VM and image directories, the
// VMM processes and the background loops. This file is its one wiring
// point; the RPC methods live in files named for what they serve.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"banger/internal/api"
	"banger/internal/buildinfo"
	"banger/internal/errdefs"
	"banger/internal/guest"
	"banger/internal/helperapi"
	"banger/internal/imagebuild"
	"banger/internal/lockfile"
	"banger/internal/model"
	"banger/internal/operation"
	"banger/internal/paths"
	"banger/internal/rpc"
	"banger/internal/store"
	"banger/internal/tappool"
	"banger/internal/vmm"
)

// The helper client is what the tap pool creates and deletes taps with.
var _ tappool.Allocator = helperapi.Client{}

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

	// helper is banger-helper, for what needs root; tapPool keeps taps
	// made by it ready for VM starts.
	helper  helperapi.Client
	tapPool *tappool.Pool

	// ops runs asynchronous operations (image builds, VM creates);
	// builder makes images.
	ops     *operation.Registry
	builder *imagebuild.Builder

	// VMs: the drivers this daemon has and the one "auto" means;
	// whether the VMs directory clones files (FICLONE) and, asked of the
	// helper now and then, whether dm-snapshot works; banger's
	// known_hosts.
	drivers     map[string]vmm.Driver
	autoDriver  string
	autoReason  string
	reflinkOK   bool
	dmMu        sync.Mutex
	dmOK        bool
	dmCheckedAt time.Time
	knownHosts  *knownHosts
	allocMu     sync.Mutex // serialises address and name allocation
	vmLocks     sync.Map   // vm id → *sync.Mutex
	monitorMu   sync.Mutex
	monitors    map[string]context.CancelFunc // vm id → stop watching its VMM
	// bgCtx is the daemon's lifetime, for work no request owns.
	bgCtx context.Context

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
	d := &Daemon{
		layout:      layout,
		cfg:         opts.Config,
		configFound: opts.ConfigFound,
		logLevel:    opts.LogLevel,
		logger:      opts.Logger,
		store:       st,
		ownerUID:    uint32(os.Getuid()),
		helper:      helperapi.Client{Socket: opts.Config.HelperSocket},
		started:     time.Now(),
	}
	d.tapPool = tappool.New(d.helper, opts.Config.TapPoolSize, opts.Logger)
	d.ops = operation.NewRegistry(st, opts.Logger)
	d.builder = &imagebuild.Builder{
		ImagesDir: layout.ImagesDir,
		CacheDir:  filepath.Join(layout.CacheDir, "apt-archives"),
		Guest:     imagebuild.Guest{Binary: guestBinary(), Unit: guest.Unit, EnableLink: guest.UnitEnableLink, Mask: guest.MaskedUnitNames()},
	}
	d.initVMs(ctx)
	d.recover(ctx)
	d.recoverVMs(ctx)
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
		"tap_pool_size", opts.Config.TapPoolSize)
	// In the background: the daemon serves whether or not the helper
	// answers. After serving, the pool's ready taps are released.
	stopTapPool := d.startTapPool(ctx)
	err = d.Serve(ctx, ln)
	d.stopOperations()
	// VMs keep running: the next bangerd adopts them.
	d.stopAllMonitors()
	stopTapPool()
	d.logger.Info("daemon stopped", "pid", os.Getpid(), "uptime_ms", time.Since(d.started).Milliseconds())
	return err
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
		Methods:   d.methods(),
		Authorize: d.authorize,
		Observe:   d.observeRPC,
	}
	return srv.Serve(ctx, ln)
}

func (d *Daemon) methods() map[string]rpc.Handler {
	return map[string]rpc.Handler{
		api.MethodDaemonPing:     rpc.Typed(d.ping),
		api.MethodDaemonStatus:   rpc.Typed(d.status),
		api.MethodDaemonShutdown: rpc.Typed(d.shutdownDaemon),
		api.MethodDaemonDoctor:   rpc.Typed(d.doctor),

		api.MethodOperationStatus: rpc.Typed(d.operationStatus),
		api.MethodOperationCancel: rpc.Typed(d.operationCancel),

		api.MethodImageBuildBegin:  rpc.Typed(d.imageBuildBegin),
		api.MethodImageBuildStatus: rpc.Typed(d.operationStatus),
		api.MethodImageRegister:    rpc.Typed(d.imageRegister),
		api.MethodImageList:        rpc.Typed(d.imageList),
		api.MethodImageShow:        rpc.Typed(d.imageShow),
		api.MethodImageRemove:      rpc.Typed(d.imageRemove),

		api.MethodVMCreateBegin:  rpc.Typed(d.vmCreateBegin),
		api.MethodVMCreateStatus: rpc.Typed(d.operationStatus),
		api.MethodVMStart:        rpc.Typed(d.vmStart),
		api.MethodVMStop:         rpc.Typed(d.vmStop),
		api.MethodVMRestart:      rpc.Typed(d.vmRestart),
		api.MethodVMRemove:       rpc.Typed(d.vmRemove),
		api.MethodVMList:         rpc.Typed(d.vmList),
		api.MethodVMShow:         rpc.Typed(d.vmShow),
		api.MethodVMSet:          rpc.Typed(d.vmSet),
		api.MethodVMTouch:        rpc.Typed(d.vmTouch),
		api.MethodVMSSHInfo:      rpc.Typed(d.vmSSHInfo),
	}
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
	attrs := []any{"method", c.Method, "op_id", c.OpID, "peer_uid", c.Peer.UID, "duration_ms", c.Duration.Milliseconds()}
	if c.Err != nil {
		d.logger.InfoContext(ctx, "rpc failed", append(attrs, "code", string(c.Err.Code), "error", c.Err.Message)...)
		return
	}
	d.logger.DebugContext(ctx, "rpc completed", attrs...)
}
