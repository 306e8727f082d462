package cli

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"banger/internal/api"
	"banger/internal/model"
	"banger/internal/rpc"
)

const noFileDirective = "Completion ended with directive: ShellCompDirectiveNoFileComp\n"

// complete runs cobra's hidden __complete command, as the shell's
// completion script does, and returns the completions it printed.
func complete(t *testing.T, args ...string) []string {
	t.Helper()
	code, stdout, stderr := runCLI(append([]string{"__complete"}, args...)...)
	if code != exitOK {
		t.Fatalf("__complete %q: exit %d, stderr %q", args, code, stderr)
	}
	if stderr != noFileDirective {
		t.Errorf("__complete %q: stderr %q, want only the directive", args, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if last := lines[len(lines)-1]; last != ":4" {
		t.Errorf("__complete %q: directive %q, want :4 (no file completion)", args, last)
	}
	return lines[:len(lines)-1]
}

// TestCompletionOffersNames: with a daemon running, the verbs that take
// VM or image names offer them — the VMs in a state the verb accepts,
// each name once — and commands that take no names offer nothing.
func TestCompletionOffersNames(t *testing.T) {
	serveDaemon(t, map[string]rpc.Handler{
		api.MethodVMList: rpc.Typed(func(context.Context, rpc.NoParams) ([]api.VMDetail, error) {
			return []api.VMDetail{
				{VMRecord: model.VMRecord{Name: "dev", State: model.VMStateRunning}},
				{VMRecord: model.VMRecord{Name: "old", State: model.VMStateStopped}},
				{VMRecord: model.VMRecord{Name: "half", State: model.VMStateError}},
			}, nil
		}),
		api.MethodImageList: rpc.Typed(func(context.Context, rpc.NoParams) ([]model.Image, error) {
			return []model.Image{{Name: "default"}, {Name: "mine"}}, nil
		}),
	})
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"vm", "ssh", ""}, "dev\trunning"},
		{[]string{"vm", "exec", ""}, "dev\trunning"},
		{[]string{"vm", "stop", ""}, "dev\trunning"},
		{[]string{"vm", "start", ""}, "old\tstopped,half\terror"},
		{[]string{"vm", "show", ""}, "dev\trunning,old\tstopped,half\terror"},
		{[]string{"vm", "show", "o"}, "old\tstopped"},
		{[]string{"vm", "logs", "-f", ""}, "dev\trunning,old\tstopped,half\terror"},
		{[]string{"vm", "set", ""}, "dev\trunning,old\tstopped,half\terror"},
		{[]string{"vm", "rm", "dev", ""}, "old\tstopped,half\terror"},
		{[]string{"vm", "remove", "--force", "old", ""}, "dev\trunning,half\terror"},
		{[]string{"vm", "restart", ""}, "dev\trunning,old\tstopped,half\terror"},
		{[]string{"vm", "touch", "half", ""}, "dev\trunning,old\tstopped"},
		{[]string{"vm", "show", "dev", ""}, ""}, // one name only
		{[]string{"vm", "ssh", "dev", ""}, ""},
		{[]string{"image", "show", ""}, "default,mine"},
		{[]string{"image", "rm", "m"}, "mine"},
		{[]string{"vm", "create", "--image", ""}, "default,mine"},
		{[]string{"vm", "ls", ""}, ""},
		{[]string{"daemon", "status", ""}, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			if got := strings.Join(complete(t, tt.args...), ","); got != tt.want {
				t.Errorf("completions %q, want %q", got, tt.want)
			}
		})
	}
}

// TestCompletionWithoutDaemon: with no daemon running a completion
// offers nothing, prints no error and starts no daemon.
func TestCompletionWithoutDaemon(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	run := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", run)
	// A bangerd that leaves a mark if anything starts it.
	marker := filepath.Join(t.TempDir(), "started")
	fake := filepath.Join(t.TempDir(), "bangerd")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BANGER_DAEMON_BIN", fake)
	for _, args := range [][]string{{"vm", "ssh", ""}, {"vm", "start", ""}, {"image", "rm", ""}, {"vm", "create", "--image", ""}} {
		if got := complete(t, args...); len(got) != 0 {
			t.Errorf("__complete %q without a daemon: %q", args, got)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a completion started bangerd")
	}
	if entries, _ := os.ReadDir(run); len(entries) != 0 {
		t.Errorf("a completion made %s/%s", run, entries[0].Name())
	}
}

// TestCompletionDaemonNotAnswering: a daemon that takes the connection
// but never answers costs a completion at most its timeout, and offers
// nothing.
func TestCompletionDaemonNotAnswering(t *testing.T) {
	_, ln := privateSocket(t)
	var mu sync.Mutex
	var held []net.Conn // held open, never answered
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()
	start := time.Now()
	if got := complete(t, "vm", "ssh", ""); len(got) != 0 {
		t.Errorf("completions from a silent daemon: %q", got)
	}
	if took := time.Since(start); took > completionTimeout+2*time.Second {
		t.Errorf("completion took %s", took)
	}
}

// TestEveryNameVerbCompletes: each vm, image and workspace verb whose
// usage names a NAME or VM has name completion, and every command listed
// exists.
func TestEveryNameVerbCompletes(t *testing.T) {
	a := &app{getenv: os.Getenv}
	root := a.rootCommand()
	seen := map[string]bool{}
	for _, group := range []string{"vm", "image", "workspace"} {
		cmd, _, err := root.Find([]string{group})
		if err != nil {
			t.Fatal(err)
		}
		for _, sub := range cmd.Commands() {
			path := group + " " + sub.Name()
			if _, ok := argCompletions[path]; ok {
				seen[path] = true
			}
			if (strings.Contains(sub.Use, "NAME") || strings.Contains(sub.Use, "VM")) && !seen[path] {
				t.Errorf("%q takes a NAME but has no name completion in argCompletions", path)
			}
		}
	}
	for path := range argCompletions {
		if !seen[path] {
			t.Errorf("argCompletions names %q, which is not a command", path)
		}
	}
}
