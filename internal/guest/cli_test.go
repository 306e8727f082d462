package guest

import (
	"banger/internal/guestapi"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCLI(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		code      int
		stdout    string
		stderrHas string
	}{
		{"unit", []string{"banger-guest", "unit"}, 0, guestapi.Unit, ""},
		{"help", []string{"banger-guest", "help"}, 0, usage, ""},
		{"no command", []string{"banger-guest"}, 2, "", "usage: banger-guest"},
		{"unknown", []string{"banger-guest", "boot"}, 2, "", `unknown command "boot"`},
		{"setup with arguments", []string{"banger-guest", "setup", "now"}, 2, "", "takes no arguments"},
		// The test is not PID 1, so init refuses before touching anything.
		{"init outside PID 1", []string{"banger-guest", "init"}, 2, "", "must run as PID 1"},
		{"/init outside PID 1 is the CLI", []string{"/init"}, 2, "", "usage: banger-guest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := Main(tt.args, &stdout, &stderr); code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			if stdout.String() != tt.stdout {
				t.Errorf("stdout %q, want %q", stdout.String(), tt.stdout)
			}
			if !strings.Contains(stderr.String(), tt.stderrHas) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.stderrHas)
			}
		})
	}
}

func TestSetupMainReportsEachFailure(t *testing.T) {
	root := t.TempDir()
	cmdline := filepath.Join(root, "cmdline")
	os.WriteFile(cmdline, []byte(testCmdline), 0o644)
	sys := &fakeSystem{netErr: errors.New("no eth0"), mountErr: errors.New("no /dev/vdc")}
	var stderr bytes.Buffer
	if code := setupMain(&stderr, sys, root, cmdline); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	var failed []string
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if !strings.HasPrefix(line, "banger-guest: ") {
			t.Errorf("line without the prefix: %q", line)
		}
		if strings.Contains(line, "setup failed: ") {
			failed = append(failed, line)
		}
	}
	if len(failed) != 2 || !strings.HasSuffix(failed[0], "no eth0") || !strings.HasSuffix(failed[1], "no /dev/vdc") {
		t.Errorf("failure lines %q", failed)
	}
}

func TestSetupMainNotConfigured(t *testing.T) {
	cmdline := filepath.Join(t.TempDir(), "cmdline")
	os.WriteFile(cmdline, []byte("console=ttyS0 root=/dev/vda\n"), 0o644)
	var stderr bytes.Buffer
	if code := setupMain(&stderr, &fakeSystem{}, t.TempDir(), cmdline); code != 0 {
		t.Errorf("exit %d, want 0: %s", code, stderr.String())
	}
}

func TestSetupMainNoCmdline(t *testing.T) {
	var stderr bytes.Buffer
	if code := setupMain(&stderr, &fakeSystem{}, t.TempDir(), filepath.Join(t.TempDir(), "missing")); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), "setup failed: ") {
		t.Errorf("stderr %q", stderr.String())
	}
}
