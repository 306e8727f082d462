package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"banger/internal/api"
	"banger/internal/rpc"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	var out, errb bytes.Buffer
	code = Run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestExitStatus(t *testing.T) {
	tests := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"--help"}, exitOK, ""},
		{[]string{"nope"}, exitUsage, `unknown command "nope" for "banger"`},
		{[]string{"daemon", "nope"}, exitUsage, `unknown command "nope" for "banger daemon"`},
		{[]string{"--bogus"}, exitUsage, "unknown flag: --bogus"},
		{[]string{"daemon", "stop", "now"}, exitUsage, "takes no arguments"},
		{[]string{"daemon", "logs", "-n", "x"}, exitUsage, "invalid argument"},
		// Not a usage error: the command is right, the world is not.
		{[]string{"daemon", "logs"}, exitError, "no daemon log at"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, stderr := run(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, stderr)
			}
			if tt.err != "" && !strings.Contains(stderr, tt.err) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.err)
			}
			if tt.err != "" && strings.Count(stderr, "banger: ") != 1 {
				t.Errorf("error not printed exactly once: %q", stderr)
			}
		})
	}
}

func TestPrintErrorJSONKeepsCodeAndOpID(t *testing.T) {
	var stderr bytes.Buffer
	a := &app{stderr: &stderr, jsonOut: true}
	remote := &rpc.ErrorResponse{Code: rpc.CodeNotFound, Message: `vm "x" not found`, OpID: "op-123456789abc"}
	a.printError(errors.Join(remote))
	var got struct{ Error rpc.ErrorResponse }
	if err := json.Unmarshal(stderr.Bytes(), &got); err != nil {
		t.Fatalf("stderr %q: %v", stderr.String(), err)
	}
	if got.Error.Code != rpc.CodeNotFound || got.Error.OpID != "op-123456789abc" || got.Error.Message != `vm "x" not found` {
		t.Errorf("JSON error = %+v", got.Error)
	}

	stderr.Reset()
	a.jsonOut = false
	a.printError(remote)
	if want := "banger: vm \"x\" not found (op-123456789abc)\n"; stderr.String() != want {
		t.Errorf("text error = %q, want %q", stderr.String(), want)
	}
}

func TestFormatUptime(t *testing.T) {
	for in, want := range map[float64]string{0: "0s", 59.4: "59s", 61: "1m01s", 3600 * 5.5: "5h30m", 86400 * 3: "3d00h"} {
		if got := formatUptime(secs(in)); got != want {
			t.Errorf("formatUptime(%v) = %q, want %q", in, got, want)
		}
	}
}

func secs(s float64) (d time.Duration) { return time.Duration(s * 1e9) }

func TestSSHArgv(t *testing.T) {
	info := api.VMSSHInfo{Host: "172.16.0.2", Port: 22, User: "root", IdentityFile: "/k", KnownHostsFile: "/kh", HostKeyAlias: "banger-x"}
	got := sshArgv(info, remoteCommand([]string{"sh", "-c", "echo 'a b' > /root/x; cat $HOME/x"}), ttyNo)
	last := got[len(got)-1]
	if want := `sh -c 'echo '\''a b'\'' > /root/x; cat $HOME/x'`; last != want {
		t.Errorf("remote command = %s, want %s", last, want)
	}
	if got[len(got)-2] != "root@172.16.0.2" {
		t.Errorf("destination = %q", got[len(got)-2])
	}
	joined := strings.Join(got, " ")
	for _, want := range []string{"StrictHostKeyChecking=yes", "HostKeyAlias=banger-x", "UserKnownHostsFile=/kh", "-T", "BatchMode=yes", "IdentitiesOnly=yes"} {
		if !strings.Contains(joined, want) {
			t.Errorf("argv lacks %s: %v", want, got)
		}
	}
	if interactive := sshArgv(info, remoteCommand(nil), ttyDefault); interactive[len(interactive)-1] != "root@172.16.0.2" || strings.Contains(strings.Join(interactive, " "), "BatchMode") {
		t.Errorf("interactive argv = %v", interactive)
	}
	if tty := sshArgv(info, "cd /root/p && exec bash -l", ttyYes); !slices.Contains(tty, "-t") || tty[len(tty)-1] != "cd /root/p && exec bash -l" {
		t.Errorf("terminal argv = %v", tty)
	}
}
