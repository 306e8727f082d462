package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"banger/internal/api"
	"banger/internal/buildinfo"
	"banger/internal/errdefs"
	"banger/internal/lockfile"
	"banger/internal/paths"
	"banger/internal/rpc"
)

const (
	pingTimeout      = 5 * time.Second
	daemonStartLimit = 20 * time.Second
	logTailLines     = 20
	// maxLogBytes: a log larger than this is moved to bangerd.log.1 when
	// the CLI starts a new daemon, so it cannot grow without bound.
	maxLogBytes = 16 << 20
)

// ping asks the daemon at the layout's socket who it is.
func (a *app) ping(ctx context.Context, layout paths.Layout) (api.PingResult, error) {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	var res api.PingResult
	err := rpc.Call(ctx, layout.SocketPath, api.MethodDaemonPing, nil, &res)
	return res, err
}

// ensureDaemon returns a daemon that speaks this CLI's protocol, starting
// one when none is running. started says whether this call started it.
func (a *app) ensureDaemon(ctx context.Context) (layout paths.Layout, res api.PingResult, started bool, err error) {
	layout, err = a.layout()
	if err != nil {
		return layout, res, false, err
	}
	// A config the user named and that is not there is a mistake to say
	// at once, whether or not a daemon runs already.
	if err := layout.CheckConfig(); err != nil {
		return layout, res, false, err
	}
	res, err = a.ping(ctx, layout)
	if err == nil {
		return layout, res, false, checkProtocol(res)
	}
	if !rpc.IsNotListening(err) {
		return layout, res, false, explainPingError(layout, err)
	}

	// Nothing is listening. Serialise start-up between CLIs, then look
	// again: another banger may have started it while we waited.
	if err := layout.EnsureRuntimeDir(); err != nil {
		return layout, res, false, err
	}
	lockCtx, cancel := context.WithTimeout(ctx, daemonStartLimit)
	defer cancel()
	lock, err := lockfile.Acquire(lockCtx, filepath.Join(layout.RuntimeDir, "autostart.lock"))
	if err != nil {
		return layout, res, false, err
	}
	defer lock.Release()
	if res, err = a.ping(ctx, layout); err == nil {
		return layout, res, false, checkProtocol(res)
	} else if !rpc.IsNotListening(err) {
		return layout, res, false, explainPingError(layout, err)
	}
	res, err = a.startDaemon(ctx, layout)
	if err != nil {
		return layout, res, false, err
	}
	if !a.jsonOut {
		fmt.Fprintf(a.stderr, "started bangerd (pid %d)\n", res.PID)
	}
	return layout, res, true, checkProtocol(res)
}

func checkProtocol(res api.PingResult) error {
	if res.ProtocolVersion == buildinfo.ProtocolVersion {
		return nil
	}
	return codedError{rpc.CodeBadVersion, fmt.Errorf("bangerd (pid %d, version %s) speaks protocol %d but this banger speaks protocol %d; stop it with 'banger daemon stop' and run the command again",
		res.PID, res.Version, res.ProtocolVersion, buildinfo.ProtocolVersion)}
}

// codedError is an error the CLI finds itself, with the code --json
// reports it under.
type codedError struct {
	code rpc.Code
	error
}

func (e codedError) ErrorCode() rpc.Code { return e.code }
func (e codedError) Unwrap() error       { return e.error }

func explainPingError(layout paths.Layout, err error) error {
	var remote *rpc.ErrorResponse
	if errors.As(err, &remote) && remote.Code == rpc.CodeBadVersion {
		return fmt.Errorf("bangerd at %s refused this banger (protocol %d): %w; stop it with 'banger daemon stop' and run the command again",
			layout.SocketPath, buildinfo.ProtocolVersion, err)
	}
	return errdefs.Mark(errdefs.ErrUnavailable, fmt.Errorf("bangerd at %s does not answer: %w", layout.SocketPath, err))
}

// startDaemon spawns bangerd in its own session, detached from this
// terminal, with its output appended to the daemon log, and waits until
// it answers. If it exits or never answers, the error carries the log
// lines it wrote.
func (a *app) startDaemon(ctx context.Context, layout paths.Layout) (api.PingResult, error) {
	bin, err := a.daemonBinary()
	if err != nil {
		return api.PingResult{}, err
	}
	if err := os.MkdirAll(layout.StateDir, 0o700); err != nil {
		return api.PingResult{}, fmt.Errorf("create %s: %w", layout.StateDir, err)
	}
	rotateLog(layout.LogPath)
	logFile, err := os.OpenFile(layout.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return api.PingResult{}, fmt.Errorf("open daemon log: %w", err)
	}
	defer logFile.Close()
	logStart, _ := logFile.Seek(0, io.SeekEnd)

	var args []string
	if a.configPath != "" {
		args = append(args, "--config", layout.ConfigFile)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Dir = "/"
	// Its own session: no terminal signal (Ctrl-C in this shell) reaches
	// it, and it outlives this command.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return api.PingResult{}, errdefs.Mark(errdefs.ErrUnavailable, fmt.Errorf("start %s: %w", bin, err))
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	deadline := time.NewTimer(daemonStartLimit)
	defer deadline.Stop()
	delay := 5 * time.Millisecond
	for {
		res, err := a.ping(ctx, layout)
		if err == nil {
			return res, nil
		}
		select {
		case werr := <-exited:
			// bangerd says by its exit status that its config is wrong:
			// the user's to fix, not a daemon that may come back.
			kind := errdefs.ErrUnavailable
			if ee := (*exec.ExitError)(nil); errors.As(werr, &ee) && ee.ExitCode() == api.ExitConfig {
				kind = errdefs.ErrInvalidArgument
			}
			return api.PingResult{}, errdefs.Mark(kind, fmt.Errorf("bangerd exited during start-up (%v)%s", werr, logTail(layout.LogPath, logStart)))
		case <-deadline.C:
			return api.PingResult{}, errdefs.Mark(errdefs.ErrUnavailable, fmt.Errorf("bangerd (pid %d) did not answer within %s: %v%s", cmd.Process.Pid, daemonStartLimit, err, logTail(layout.LogPath, logStart)))
		case <-ctx.Done():
			return api.PingResult{}, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 100*time.Millisecond)
	}
}

// daemonBinary finds bangerd: $BANGER_DAEMON_BIN, then next to this
// executable (how `make build` and `banger system install` lay them out),
// then $PATH.
func (a *app) daemonBinary() (string, error) {
	if bin := a.getenv("BANGER_DAEMON_BIN"); bin != "" {
		return bin, nil
	}
	if self, err := os.Executable(); err == nil {
		sibling := filepath.Join(filepath.Dir(self), "bangerd")
		if fi, err := os.Stat(sibling); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return sibling, nil
		}
	}
	if bin, err := exec.LookPath("bangerd"); err == nil {
		return bin, nil
	}
	return "", errdefs.Mark(errdefs.ErrUnavailable, errors.New("cannot find bangerd: install it next to banger or on PATH, or set BANGER_DAEMON_BIN"))
}

func rotateLog(path string) {
	if fi, err := os.Stat(path); err == nil && fi.Size() > maxLogBytes {
		_ = os.Rename(path, path+".1")
	}
}

// logTail returns the last lines written to the log after offset, as a
// suffix for an error message.
func logTail(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > logTailLines {
			lines = lines[1:]
		}
	}
	if len(lines) == 0 {
		return fmt.Sprintf("; %s has nothing from it", path)
	}
	return fmt.Sprintf("; last lines of %s:\n  %s", path, strings.Join(lines, "\n  "))
}
