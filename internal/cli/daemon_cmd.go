package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"banger/internal/api"
	"banger/internal/lockfile"
	"banger/internal/paths"
	"banger/internal/rpc"
)

const daemonStopLimit = 30 * time.Second

func (a *app) daemonCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Start, stop and inspect bangerd, the per-user daemon",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(
		&cobra.Command{
			Use:   "start",
			Short: "Start bangerd if it is not running",
			Args:  noArgs,
			RunE:  a.runDaemonStart,
		},
		&cobra.Command{
			Use:   "status",
			Short: "Show bangerd's version, pid, uptime and paths (starts it if needed)",
			Args:  noArgs,
			RunE:  a.runDaemonStatus,
		},
		&cobra.Command{
			Use:   "stop",
			Short: "Stop bangerd and wait for it to exit",
			Args:  noArgs,
			RunE:  a.runDaemonStop,
		},
		a.daemonLogsCommand(),
	)
	return cmd
}

// daemonStatus is what `daemon status` and `daemon start` report; only
// status asks for the helper and the tap pool.
type daemonStatus struct {
	Running bool `json:"running"`
	api.PingResult
	StartedNow bool               `json:"started_now"`
	SocketPath string             `json:"socket_path"`
	LogPath    string             `json:"log_path"`
	Helper     *api.HelperStatus  `json:"helper,omitempty"`
	TapPool    *api.TapPoolStatus `json:"tap_pool,omitempty"`
	VMM        *api.VMMChoice     `json:"vmm,omitempty"`
}

func (a *app) runDaemonStart(cmd *cobra.Command, _ []string) error {
	layout, res, started, err := a.ensureDaemon(cmd.Context())
	if err != nil {
		return err
	}
	st := daemonStatus{Running: true, PingResult: res, StartedNow: started, SocketPath: layout.SocketPath, LogPath: layout.LogPath}
	if a.jsonOut {
		return a.printJSON(st)
	}
	if !started {
		fmt.Fprintf(a.stdout, "bangerd is already running (pid %d)\n", res.PID)
	}
	return nil
}

func (a *app) runDaemonStatus(cmd *cobra.Command, _ []string) error {
	ctx := cmd.Context()
	layout, res, started, err := a.ensureDaemon(ctx)
	if err != nil {
		return err
	}
	st := daemonStatus{Running: true, PingResult: res, StartedNow: started, SocketPath: layout.SocketPath, LogPath: layout.LogPath}
	// The daemon bounds its own call to the helper well inside this.
	callCtx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	var full api.StatusResult
	err = rpc.Call(callCtx, layout.SocketPath, api.MethodDaemonStatus, nil, &full)
	var remote *rpc.ErrorResponse
	switch {
	case err == nil:
		st.PingResult, st.Helper, st.TapPool = full.PingResult, &full.Helper, &full.TapPool
		if full.VMM.Driver != "" {
			st.VMM = &full.VMM
		}
	case errors.As(err, &remote) && remote.Code == rpc.CodeUnknownMethod:
		// A bangerd from before daemon.status: report what ping said.
	default:
		return err
	}
	if a.jsonOut {
		return a.printJSON(st)
	}
	config := st.ConfigPath
	if !st.ConfigFound {
		config += " (not present: built-in defaults)"
	}
	t := newTable(a.stdout)
	fmt.Fprintf(a.stdout, "bangerd is running\n")
	t.row("pid", fmt.Sprint(st.PID))
	t.row("version", fmt.Sprintf("%s (protocol %d)", st.Version, st.ProtocolVersion))
	t.row("uptime", formatUptime(time.Duration(st.UptimeSeconds*float64(time.Second))))
	t.row("socket", st.SocketPath)
	t.row("config", config)
	t.row("log", fmt.Sprintf("%s (level %s)", st.LogPath, st.LogLevel))
	if st.Helper == nil {
		t.row("helper", "unknown: this bangerd is older than banger; restart it with 'banger daemon stop'")
	} else {
		t.row("helper", describeHelper(*st.Helper))
		t.row("tap pool", describeTapPool(*st.TapPool, st.Helper.Reachable))
	}
	if st.VMM != nil {
		t.row("vmm", describeVMMChoice(*st.VMM))
	}
	return t.flush()
}

// describeVMMChoice says which driver a VM created now gets, e.g.
// "qemu (vmm = auto: firecracker_bin not found ...)" or "firecracker
// (vmm = firecracker; auto would pick qemu: ...)".
func describeVMMChoice(c api.VMMChoice) string {
	if c.Config == "auto" {
		return fmt.Sprintf("%s (vmm = auto: %s)", c.Driver, c.AutoReason)
	}
	return fmt.Sprintf("%s (vmm = %s; auto would pick %s: %s)", c.Driver, c.Config, c.Auto, c.AutoReason)
}

// describeHelper is the helper line of `daemon status`, e.g.
// "reachable (v0.4.0), bridge br-fc 172.16.0.1/24 up".
func describeHelper(h api.HelperStatus) string {
	if !h.Reachable {
		return "not reachable: " + h.Error
	}
	s := fmt.Sprintf("reachable (%s)", h.Version)
	b := h.Bridge
	if b.Name == "" {
		return s
	}
	s += ", bridge " + b.Name
	if b.Address != "" {
		s += " " + b.Address
	}
	switch {
	case !b.Exists:
		return s + " not created yet"
	case b.Up:
		return s + " up"
	}
	return s + " down"
}

// describeTapPool is the tap pool line of `daemon status`, e.g.
// "2/2 ready (3 hits, 1 miss)".
func describeTapPool(p api.TapPoolStatus, helperReachable bool) string {
	if p.Size == 0 {
		return "off (tap_pool_size = 0): each VM start creates its tap"
	}
	s := fmt.Sprintf("%d/%d ready", p.Ready, p.Size)
	if p.Hits+p.Misses > 0 {
		s += fmt.Sprintf(" (%s, %s)", plural(p.Hits, "hit", "hits"), plural(p.Misses, "miss", "misses"))
	}
	switch {
	case !helperReachable:
		// The helper line says why; the refill error would repeat it.
		return s + ", waiting for banger-helper"
	case p.LastError != "":
		return s + ", last refill failed: " + p.LastError
	}
	return s
}

func plural(n uint64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func (a *app) runDaemonStop(cmd *cobra.Command, _ []string) error {
	ctx := cmd.Context()
	layout, err := a.layout()
	if err != nil {
		return err
	}
	type stopResult struct {
		WasRunning bool `json:"was_running"`
		PID        int  `json:"pid,omitempty"`
	}
	var res api.ShutdownResult
	err = rpc.Call(ctx, layout.SocketPath, api.MethodDaemonShutdown, nil, &res)
	switch {
	case rpc.IsNotListening(err):
		if a.jsonOut {
			return a.printJSON(stopResult{})
		}
		fmt.Fprintln(a.stdout, "bangerd is not running")
		return nil
	case isBadVersion(err):
		// A daemon of another protocol cannot be asked to stop; the pid in
		// its lock file can be signalled instead.
		res.PID = lockfile.ReadPID(layout.LockPath)
		if res.PID == 0 {
			return fmt.Errorf("bangerd speaks another protocol and its pid is unknown: %w", err)
		}
		if err := syscall.Kill(res.PID, syscall.SIGTERM); err != nil {
			return fmt.Errorf("signal bangerd (pid %d): %w", res.PID, err)
		}
	case err != nil:
		return err
	}
	if err := waitForExit(ctx, layout, res.PID); err != nil {
		return err
	}
	if a.jsonOut {
		return a.printJSON(stopResult{WasRunning: true, PID: res.PID})
	}
	fmt.Fprintf(a.stdout, "stopped bangerd (pid %d)\n", res.PID)
	return nil
}

func isBadVersion(err error) bool {
	var remote *rpc.ErrorResponse
	return errors.As(err, &remote) && remote.Code == rpc.CodeBadVersion
}

// waitForExit waits until the daemon has released its lock, which it
// does last, after removing its socket and closing the store.
func waitForExit(ctx context.Context, layout paths.Layout, pid int) error {
	ctx, cancel := context.WithTimeout(ctx, daemonStopLimit)
	defer cancel()
	for {
		if lockfile.ReadPID(layout.LockPath) != pid || !processAlive(pid) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bangerd (pid %d) has not exited after %s; see %s", pid, daemonStopLimit, layout.LogPath)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// processAlive reports whether pid runs. A zombie does not count: where
// nothing reaps orphans (some containers), an exited daemon stays one.
func processAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name, which may itself
	// contain spaces or parentheses.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

func formatUptime(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return d.String()
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}
