package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"banger/internal/api"
	"banger/internal/errdefs"
	"banger/internal/model"
	"banger/internal/rpc"
)

// serveMethods serves daemon.ping and methods on the socket of a private
// runtime directory, so that banger uses it instead of starting bangerd.
func serveMethods(t *testing.T, methods map[string]rpc.Handler) {
	t.Helper()
	serveDaemon(t, methods)
}

// TestCreateSendsOnlyFlagsGiven: a flag left out is left out of the
// request (the daemon's default), and one given is sent as given — 0
// vCPUs too, for the daemon to refuse rather than read as "default".
func TestCreateSendsOnlyFlagsGiven(t *testing.T) {
	var mu sync.Mutex
	var got []api.VMCreateParams
	serveMethods(t, map[string]rpc.Handler{
		api.MethodVMCreateBegin: rpc.Typed(func(_ context.Context, p api.VMCreateParams) (model.Operation, error) {
			mu.Lock()
			got = append(got, p)
			mu.Unlock()
			return model.Operation{}, fmt.Errorf("seen: %w", errdefs.ErrInvalidArgument)
		}),
	})
	str := func(p *string) string {
		if p == nil {
			return "nil"
		}
		return fmt.Sprintf("%q", *p)
	}
	num := func(p *int) string {
		if p == nil {
			return "nil"
		}
		return fmt.Sprint(*p)
	}
	for _, tc := range []struct {
		args []string
		want string // vcpus memory disk overlay nat
	}{
		{nil, `nil nil nil nil false`},
		{[]string{"--vcpus", "0"}, `0 nil nil nil false`},
		{[]string{"--vcpus", "4", "--memory", "", "--disk", "1.5G", "--overlay-size", "8G", "--nat=false"}, `4 "" "1.5G" "8G" true`},
	} {
		mu.Lock()
		got = nil
		mu.Unlock()
		if code, _, stderr := runCLI(append([]string{"vm", "create", "--name", "dev"}, tc.args...)...); code != exitError || !strings.Contains(stderr, "seen") {
			t.Fatalf("create %v: exit %d, %s", tc.args, code, stderr)
		}
		mu.Lock()
		p := got[0]
		mu.Unlock()
		if s := fmt.Sprintf("%s %s %s %s %v", num(p.VCPUs), str(p.Memory), str(p.Disk), str(p.OverlaySize), p.NAT != nil); s != tc.want {
			t.Errorf("create %v sent %s, want %s", tc.args, s, tc.want)
		}
	}
}

// TestStopResolvesBeforeItSaysSo: "stopping NAME..." is said only of a
// VM that exists; a name that does not is reported without it, and the
// other names are still stopped.
func TestStopResolvesBeforeItSaysSo(t *testing.T) {
	var mu sync.Mutex
	var stopped []string
	known := func(ref string) (api.VMDetail, error) {
		if ref != "dev" && ref != "abcd" {
			return api.VMDetail{}, fmt.Errorf("vm %q: %w", ref, errdefs.ErrNotFound)
		}
		return api.VMDetail{VMRecord: model.VMRecord{ID: "abcd1234", Name: "dev", State: model.VMStateRunning}, PID: 99}, nil
	}
	serveMethods(t, map[string]rpc.Handler{
		api.MethodVMShow: rpc.Typed(func(_ context.Context, p api.VMRef) (api.VMDetail, error) { return known(p.Name) }),
		api.MethodVMStop: rpc.Typed(func(_ context.Context, p api.VMStopParams) (api.VMDetail, error) {
			det, err := known(p.Name)
			if err != nil {
				return det, err
			}
			mu.Lock()
			stopped = append(stopped, p.Name)
			mu.Unlock()
			det.State, det.PID = model.VMStateStopped, 0
			return det, nil
		}),
	})
	code, stdout, stderr := runCLI("vm", "stop", "nosuch", "abcd")
	if code != exitError || strings.Contains(stderr, "stopping nosuch") || !strings.Contains(stderr, `vm "nosuch": not found`) {
		t.Errorf("stop nosuch: exit %d, stderr %q", code, stderr)
	}
	mu.Lock()
	nStopped := len(stopped)
	mu.Unlock()
	if !strings.Contains(stderr, "stopping dev...") || stdout != "dev: stopped\n" || nStopped != 1 {
		t.Errorf("stop of the VM that exists: stderr %q, stdout %q, stopped %v", stderr, stdout, stopped)
	}
	// --json: the VMs stopped as the stop said them (no pid left over
	// from resolving), and a list even when it is empty.
	code, stdout, _ = runCLI("--json", "vm", "stop", "dev")
	var dets []api.VMDetail
	if err := json.Unmarshal([]byte(stdout), &dets); code != exitOK || err != nil || len(dets) != 1 || dets[0].PID != 0 || dets[0].State != model.VMStateStopped {
		t.Errorf("--json stop: exit %d, %v, %q", code, err, stdout)
	}
	if code, stdout, _ = runCLI("--json", "vm", "stop", "nosuch"); code != exitError || strings.TrimSpace(stdout) != "[]" {
		t.Errorf("--json stop nosuch: exit %d, stdout %q; want []", code, stdout)
	}
}

var opIDRE = regexp.MustCompile(`^op-[0-9a-f]{12}$`)

// TestJSONErrorsHaveCodeAndOpID: every error --json prints has a code and
// an op id: the daemon's own, or, for one that never reached a daemon, a
// code from what it wraps and an op id the CLI mints.
func TestJSONErrorsHaveCodeAndOpID(t *testing.T) {
	remote := &rpc.ErrorResponse{Code: rpc.CodeConflict, Message: "vm dev is running", OpID: "op-0123456789ab"}
	for _, tc := range []struct {
		name    string
		err     error
		usage   bool
		code    rpc.Code
		message string
		minted  bool
	}{
		{"remote", fmt.Errorf("stop: %w", remote), false, rpc.CodeConflict, "stop: vm dev is running", false},
		{"usage", usageError{fmt.Errorf("--timeout 0: use 1 or more seconds"), "banger vm stop"}, true, "usage", "--timeout 0: use 1 or more seconds", true},
		{"marked", errdefs.Mark(errdefs.ErrNotFound, fmt.Errorf("config /x: no such file")), false, rpc.CodeNotFound, "config /x: no such file", true},
		{"coded", codedError{rpc.CodeBadVersion, fmt.Errorf("speaks protocol 2")}, false, rpc.CodeBadVersion, "speaks protocol 2", true},
		{"plain", fmt.Errorf("open daemon log: disk full"), false, rpc.CodeInternal, "open daemon log: disk full", true},
	} {
		e := jsonError(tc.err, tc.usage)
		if e.Code != tc.code || e.Message != tc.message || !opIDRE.MatchString(e.OpID) || (!tc.minted && e.OpID != remote.OpID) {
			t.Errorf("%s: %+v; want code %q, message %q and an op id", tc.name, e, tc.code, tc.message)
		}
	}
}

// TestConfigNamedMustExist: --config (or $BANGER_CONFIG) naming a file
// that is not there is an error before any daemon starts, with a code
// and an op id under --json; only the default path may be absent.
func TestConfigNamedMustExist(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	t.Setenv("XDG_RUNTIME_DIR", dir)
	t.Setenv("BANGER_DAEMON_BIN", "/nonexistent/bangerd") // nothing may start
	missing := dir + "/nosuch.toml"
	for _, tc := range []struct {
		env  string
		args []string
	}{
		{"", []string{"--config", missing}},
		{missing, nil},
	} {
		t.Setenv("BANGER_CONFIG", tc.env)
		code, _, stderr := runCLI(append(tc.args, "daemon", "status")...)
		if code != exitError || !strings.Contains(stderr, "banger: config "+missing+": no such file") {
			t.Errorf("%v (BANGER_CONFIG=%q): exit %d, %q", tc.args, tc.env, code, stderr)
		}
		code, _, stderr = runCLI(append(tc.args, "--json", "daemon", "status")...)
		var got struct{ Error rpc.ErrorResponse }
		if err := json.Unmarshal([]byte(stderr), &got); code != exitError || err != nil || got.Error.Code != rpc.CodeNotFound || !opIDRE.MatchString(got.Error.OpID) {
			t.Errorf("--json %v: exit %d, %v, %q", tc.args, code, err, stderr)
		}
	}
}

// TestStopCallOutlastsTheDaemon: the CLI waits for a stop at least as
// long as the daemon may take over it — the graceful timeout asked for,
// then the kill — and for a restart the boot as well; the RPC client's
// default (30 s) would give up on a `--timeout 30` stop the daemon is
// still finishing.
func TestStopCallOutlastsTheDaemon(t *testing.T) {
	for _, timeout := range []int{1, 30, 600} {
		stop := stopCallLimit("stop", timeout)
		if want := time.Duration(timeout)*time.Second + api.KillLimit; stop <= want || stop <= rpc.DefaultCallTimeout {
			t.Errorf("stop --timeout %d: the CLI waits %v, the daemon may take %v", timeout, stop, want)
		}
		if restart := stopCallLimit("restart", timeout); restart <= stop+api.BootLimit-time.Second {
			t.Errorf("restart --timeout %d: the CLI waits %v, the daemon may take %v and a boot", timeout, restart, stop)
		}
	}
}
