// Package helper is banger-helper, the small root process that does for
// bangerd only what needs root, from a closed list of operations: ensure
// the bridge, create and delete taps owned by the caller, NAT one guest
// IP, and build or remove a dm-snapshot over files the caller passes
// open. The uids it serves come from its own config file, never from
// a request; the kernel-reported peer uid of each connection is the only
// identity it trusts, and every object it makes is recorded with its
// owner, so one user can never touch another's, nor anything the helper
// did not make. It speaks the same rpc envelope as bangerd, adopts the
// caller's op id, and logs one "helper rpc completed" or "helper rpc
// failed" line per call.
package helper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"banger/internal/buildinfo"
	"banger/internal/cmdmain"
	"banger/internal/helperapi"
	"banger/internal/hostnet"
	"banger/internal/rpc"
)

// The helper's connection limits (see rpc.Server).
const (
	MaxConnsPerUID      = 64
	MaxConns            = 512
	FirstRequestTimeout = 2 * time.Second
	IdleTimeout         = 5 * time.Second
)

// Helper is one running banger-helper.
type Helper struct {
	cfg       helperapi.Config
	bridge    netip.Prefix
	statePath string
	logger    *slog.Logger
	// crashAt names a failpoint where the helper kills itself, for the
	// crash-recovery tests (BANGER_HELPER_FAILPOINT).
	crashAt string

	mu    sync.Mutex // serialises every operation and guards state
	state *state
	fw    *hostnet.Firewall
	// chainsReady: banger's iptables chains were ensured by this process.
	chainsReady bool
	// dmOK: device-mapper worked once in this process; dmDetail says
	// which driver, or why not.
	dmOK     bool
	dmDetail string
}

// New returns a helper for cfg that keeps its records at statePath.
func New(cfg helperapi.Config, statePath string, logger *slog.Logger) (*Helper, error) {
	bridge, err := cfg.BridgePrefix()
	if err != nil {
		return nil, err
	}
	return &Helper{cfg: cfg, bridge: bridge, statePath: statePath, logger: logger}, nil
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
	fs := cmdmain.NewFlags("banger-helper", "", stderr)
	configPath := fs.String("config", helperapi.DefaultConfigPath, "helper config file")
	socketPath := fs.String("socket", helperapi.DefaultSocketPath, "socket to listen on")
	statePath := fs.String("state", helperapi.DefaultStatePath, "where the helper records what it made for whom")
	var extraUIDs uidList
	fs.Var(&extraUIDs, "allow-uid", "allow this uid with the default bridge, instead of a config file (repeatable; for tests)")
	if code, exit := fs.Parse(args); exit {
		return code
	}
	logger := slog.New(slog.NewJSONHandler(stderr, nil))
	fail := func(err error) int {
		logger.Error("helper failed to start", "error", err.Error())
		return 1
	}

	// Whoever could write the binary could run code as root at the next
	// start: refuse to be that code's launcher.
	if err := checkExecutable(); err != nil {
		return fail(err)
	}
	cfg := helperapi.DefaultConfig()
	if len(extraUIDs) == 0 || fs.Given("config") {
		// Whoever can write the config decides who may use the helper.
		data, err := readRootFile(*configPath)
		if err != nil {
			return fail(fmt.Errorf("helper config: %w", err))
		}
		if cfg, err = helperapi.ParseConfig(data, *configPath); err != nil {
			return fail(err)
		}
	}
	cfg.AllowedUIDs = append(cfg.AllowedUIDs, extraUIDs...)
	if len(cfg.AllowedUIDs) == 0 {
		return fail(fmt.Errorf("no allowed uids: set allowed_uids in %s or pass --allow-uid", *configPath))
	}
	h, err := New(cfg, *statePath, logger)
	if err != nil {
		return fail(err)
	}
	h.crashAt = os.Getenv("BANGER_HELPER_FAILPOINT")

	ctx, stop := cmdmain.SignalContext(ctx)
	defer stop()
	if err := h.ListenAndServe(ctx, *socketPath); err != nil {
		return fail(err)
	}
	return 0
}

// ListenAndServe reconciles the host with the helper's records, then
// binds socketPath and serves until ctx is cancelled.
func (h *Helper) ListenAndServe(ctx context.Context, socketPath string) error {
	socketPath, made, err := h.preparePaths(socketPath)
	if err != nil {
		return err
	}
	undo := func(err error) error { return errors.Join(err, removeDirs(made)) }
	if err := h.reconcile(); err != nil {
		return undo(err)
	}

	if fi, err := os.Lstat(socketPath); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return undo(fmt.Errorf("%s exists and is not a socket; refusing to replace it", socketPath))
		}
		os.Remove(socketPath)
	}
	ln, err := net.Listen("unix", socketPath)
	if err != nil {
		return undo(fmt.Errorf("listen on %s: %w", socketPath, err))
	}
	// Anyone may connect; who may call anything is decided per connection
	// from SO_PEERCRED against allowed_uids.
	if err := os.Chmod(socketPath, 0o666); err != nil {
		ln.Close()
		return undo(fmt.Errorf("chmod %s: %w", socketPath, err))
	}
	h.logger.Info("helper started", "pid", os.Getpid(), "version", buildinfo.Version(),
		"socket", socketPath, "state", h.statePath, "allowed_uids", h.cfg.AllowedUIDs,
		"bridge", h.cfg.BridgeName, "bridge_address", h.bridge.String())
	srv := &rpc.Server{
		Methods:         h.methods(),
		Authorize:       h.authorize,
		Observe:         h.observe,
		MaxRequestBytes: 16 << 10, // its requests are a name and an address
		// Anyone may connect: bound what one uid, and everyone, can hold
		// open, and close what sits idle. bangerd opens one connection
		// per call and sends its request at once.
		MaxConnsPerUID:      MaxConnsPerUID,
		MaxConns:            MaxConns,
		FirstRequestTimeout: FirstRequestTimeout,
		IdleTimeout:         IdleTimeout,
	}
	err = srv.Serve(ctx, ln)
	h.logger.Info("helper stopped", "pid", os.Getpid())
	return err
}

// preparePaths makes and checks the socket's and the state's
// directories: whoever could rename the socket's directory could put
// their own socket in its place; whoever could write the state's could
// decide what the helper believes it made for whom. It returns the
// socket's resolved path, and what it made, for a failed start to remove.
func (h *Helper) preparePaths(socketPath string) (string, []string, error) {
	dir, made, err := ensureRootDir(filepath.Dir(socketPath))
	if err != nil {
		return "", nil, fmt.Errorf("socket directory: %w", err)
	}
	socketPath = filepath.Join(dir, filepath.Base(socketPath))
	stateDir, madeState, err := ensureRootDir(filepath.Dir(h.statePath))
	made = append(made, madeState...)
	if err != nil {
		return "", nil, errors.Join(fmt.Errorf("state directory: %w", err), removeDirs(made))
	}
	h.statePath = filepath.Join(stateDir, filepath.Base(h.statePath))
	var st unix.Stat_t
	if err := unix.Lstat(h.statePath, &st); err == nil {
		if err := checkRootFile(h.statePath, &st); err != nil {
			return "", nil, errors.Join(fmt.Errorf("state file: %w", err), removeDirs(made))
		}
	}
	return socketPath, made, nil
}

func (h *Helper) methods() map[string]rpc.Handler {
	return map[string]rpc.Handler{
		helperapi.MethodStatus:        rpc.Typed(h.status),
		helperapi.MethodBridgeEnsure:  rpc.Typed(h.ensureBridge),
		helperapi.MethodTapCreate:     rpc.Typed(h.createTap),
		helperapi.MethodTapDelete:     rpc.Typed(h.deleteTap),
		helperapi.MethodNATEnable:     rpc.Typed(h.enableNAT),
		helperapi.MethodNATDisable:    rpc.Typed(h.disableNAT),
		helperapi.MethodOverlayAttach: rpc.Typed(h.attachOverlay),
		helperapi.MethodOverlayDetach: rpc.Typed(h.detachOverlay),
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

// firewall returns the iptables handle, found on first use: a helper
// whose users never ask for NAT runs without iptables installed.
func (h *Helper) firewall() (*hostnet.Firewall, error) {
	if h.fw != nil {
		return h.fw, nil
	}
	fw, err := hostnet.NewFirewall()
	if err != nil {
		return nil, fmt.Errorf("NAT needs iptables: %w", err)
	}
	h.fw = fw
	return fw, nil
}

func (h *Helper) saveState() error {
	return h.state.save(h.statePath)
}

// failpoint kills the helper with SIGKILL at the named point when the
// crash tests ask for it, to prove a crash there leaves nothing behind.
func (h *Helper) failpoint(name string) {
	if h.crashAt == name {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}
