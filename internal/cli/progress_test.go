package cli

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"banger/internal/api"
	"banger/internal/buildinfo"
	"banger/internal/errdefs"
	"banger/internal/model"
	"banger/internal/operation"
	"banger/internal/paths"
	"banger/internal/rpc"
	"banger/internal/testutil/memops"
)

// privateSocket gives the test a HOME and runtime directory of its own
// (and no config named by the environment) and listens on the daemon
// socket there, where banger looks for bangerd.
func privateSocket(t *testing.T) (paths.Layout, net.Listener) {
	t.Helper()
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	t.Setenv("BANGER_CONFIG", "")
	layout, err := paths.Resolve(os.Getenv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := layout.EnsureRuntimeDir(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", layout.SocketPath)
	if err != nil {
		t.Fatal(err)
	}
	return layout, ln
}

// serveDaemon answers daemon.ping (with this CLI's protocol) and
// methods on the socket of a private runtime directory, so that banger
// uses it instead of starting bangerd.
func serveDaemon(t *testing.T, methods map[string]rpc.Handler) paths.Layout {
	t.Helper()
	layout, ln := privateSocket(t)
	methods[api.MethodDaemonPing] = rpc.Typed(func(context.Context, rpc.NoParams) (api.PingResult, error) {
		return api.PingResult{Version: "v0.0.0-test", ProtocolVersion: buildinfo.ProtocolVersion, PID: 4242}, nil
	})
	srv := &rpc.Server{Methods: methods}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return layout
}

// startStage is one stage of the fake start: how long it runs and the
// details it reports.
type startStage struct {
	name    string
	takes   time.Duration
	details []string
}

// fakeStart serves vm.start.begin and operation.status as bangerd does,
// through a real operation registry, with a start made of stages.
func fakeStart(t *testing.T, stages []startStage) {
	t.Helper()
	reg := operation.NewRegistry(&memops.Store{}, nil)
	var names []string
	for _, s := range stages {
		names = append(names, s.name)
	}
	serveDaemon(t, map[string]rpc.Handler{
		api.MethodVMStartBegin: rpc.Typed(func(ctx context.Context, p api.VMRef) (model.Operation, error) {
			if p.Name != "dev" {
				return model.Operation{}, fmt.Errorf("vm %q not found: %w", p.Name, errdefs.ErrNotFound)
			}
			return reg.Begin(ctx, "vm.start", p.Name, names, func(ctx context.Context, r *operation.Reporter) (any, error) {
				for _, s := range stages {
					r.Stage(s.name)
					for _, d := range s.details {
						r.Detail(d, -1)
					}
					time.Sleep(s.takes)
				}
				return api.VMDetail{VMRecord: model.VMRecord{Name: "dev", State: model.VMStateRunning, Runtime: model.VMRuntime{GuestIP: "172.16.0.9"}}}, nil
			})
		}),
		api.MethodOperationStatus: rpc.Typed(func(ctx context.Context, p api.OperationStatusParams) (api.OperationStatus, error) {
			return reg.Status(ctx, p.ID, p.AfterSeq, time.Duration(p.WaitMS)*time.Millisecond)
		}),
	})
}

var startStages = []startStage{
	{name: "tap"},
	{name: "boot", takes: 1200 * time.Millisecond, details: []string{"vmm pid 77"}},
	{name: "wait for ssh", takes: 1500 * time.Millisecond},
}

var (
	doneLine  = regexp.MustCompile(`^✓ (\S.*?) +(\d+\.\d)s$`)
	totalLine = regexp.MustCompile(`^  total +(\d+\.\d)s$`)
)

// stageTimes reads the finished stages (in tenths of a second) and the
// total from progress output.
func stageTimes(t *testing.T, lines []string) (names []string, tenths map[string]int, total int) {
	t.Helper()
	tenths = map[string]int{}
	total = -1
	for _, l := range lines {
		if m := doneLine.FindStringSubmatch(l); m != nil {
			names = append(names, m[1])
			tenths[m[1]] = parseTenths(t, m[2])
		} else if m := totalLine.FindStringSubmatch(l); m != nil {
			total = parseTenths(t, m[1])
		}
	}
	return names, tenths, total
}

func parseTenths(t *testing.T, s string) int {
	n, err := strconv.Atoi(strings.Replace(s, ".", "", 1))
	if err != nil {
		t.Fatalf("time %q: %v", s, err)
	}
	return n
}

// checkStageTimes: every stage says how long it took, long ones at
// least as long as they ran, and the times add up to the total.
func checkStageTimes(t *testing.T, out string, lines []string) map[string]int {
	t.Helper()
	names, tenths, total := stageTimes(t, lines)
	if strings.Join(names, ",") != "tap,boot,wait for ssh" {
		t.Fatalf("finished stages %q in:\n%s", names, out)
	}
	sum := 0
	for _, s := range startStages {
		if min := int(s.takes / (100 * time.Millisecond)); tenths[s.name] < min {
			t.Errorf("%s took %d.%ds, shown as %d.%ds", s.name, min/10, min%10, tenths[s.name]/10, tenths[s.name]%10)
		}
		sum += tenths[s.name]
	}
	if sum != total {
		t.Errorf("stages add up to %d tenths, total says %d:\n%s", sum, total, out)
	}
	return tenths
}

// TestStartProgressWithoutTerminal: vm start shows its stages; each
// stage that is still running when its news arrives gets a line, every
// stage ends with its time, and the times add up to the total.
func TestStartProgressWithoutTerminal(t *testing.T) {
	fakeStart(t, startStages)
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), []string{"vm", "start", "dev"}, strings.NewReader(""), &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if stdout.String() != "dev: running at 172.16.0.9\n" {
		t.Errorf("stdout %q", stdout.String())
	}
	out := stderr.String()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if !regexp.MustCompile(`^starting vm dev \(op-[0-9a-f]{12}\)$`).MatchString(lines[0]) {
		t.Errorf("first line %q", lines[0])
	}
	checkStageTimes(t, out, lines)
	// The long stages are announced when they begin, before their time.
	for _, want := range []string{"  boot...", "    vmm pid 77", "  wait for ssh..."} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("no %q line in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\r") || strings.Contains(out, "\033") {
		t.Errorf("terminal control characters without a terminal:\n%q", out)
	}
}

// TestStartProgressOnTerminal: on a terminal the running stage is
// redrawn with its own time so far, which agrees with the time it ends
// with; each stage ends with its time and they add up to the total.
func TestStartProgressOnTerminal(t *testing.T) {
	fakeStart(t, startStages)
	term := openTerminal(t)
	var stdout bytes.Buffer
	code := Run(context.Background(), []string{"vm", "start", "dev"}, strings.NewReader(""), &stdout, term.TTY)
	out := term.Output()
	if code != exitOK {
		t.Fatalf("exit %d: %q", code, out)
	}
	// Each redraw starts with \r and clears the line.
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		lines = append(lines, strings.Split(l, "\r\033[K")...)
	}
	tenths := checkStageTimes(t, out, lines)
	spin := regexp.MustCompile(`^. (\S.*?) +(\d+\.\d)s  (.*)$`)
	counted := map[string]int{}
	for _, l := range lines {
		if m := spin.FindStringSubmatch(l); m != nil && !strings.HasPrefix(l, "✓") {
			counted[m[1]] = max(counted[m[1]], parseTenths(t, m[2]))
		}
	}
	for _, stage := range []string{"boot", "wait for ssh"} {
		c, ok := counted[stage]
		if !ok {
			t.Errorf("no spinner line for %s in:\n%q", stage, out)
			continue
		}
		// Redrawn about every second: its last count is at most a
		// second and a bit short of the time it ends with, never over.
		if c > tenths[stage] || c < tenths[stage]-12 {
			t.Errorf("%s: the spinner counted to %d tenths, the stage took %d:\n%q", stage, c, tenths[stage], out)
		}
	}
}

// TestStartRefusedBeforeProgress: a VM that cannot start is refused
// before anything says it is starting.
func TestStartRefusedBeforeProgress(t *testing.T) {
	fakeStart(t, startStages)
	code, stdout, stderr := runCLI("vm", "start", "nosuch")
	if code != exitError || stdout != "" || !strings.HasPrefix(stderr, `banger: vm "nosuch" not found`) || strings.Contains(stderr, "starting") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
