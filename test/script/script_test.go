// Package script tests the banger CLI as a user sees it: each
// testdata/*.txtar script runs real banger and bangerd processes against
// a private HOME and runtime directory.
package script

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"banger/internal/cli"
	"banger/internal/daemon"
	"banger/internal/helper"
	"banger/internal/lockfile"
	"banger/internal/paths"
	"banger/internal/testutil/netns"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"banger": func() {
			os.Exit(cli.Run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
		},
		"bangerd": func() {
			os.Exit(daemon.Main(context.Background(), os.Args[1:], os.Stderr))
		},
		"banger-helper": func() {
			os.Exit(helper.Main(context.Background(), os.Args[1:], os.Stderr))
		},
		"fakebangerd": fakeDaemon,
		"fakehelper":  fakeHelper,
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Setup: func(env *testscript.Env) error {
			home := filepath.Join(env.WorkDir, "home")
			// A short runtime dir: unix socket paths are limited to 107 bytes.
			run, err := os.MkdirTemp("", "bgr")
			if err != nil {
				return err
			}
			env.Setenv("HOME", home)
			env.Setenv("XDG_RUNTIME_DIR", run)
			env.Setenv("SOCK", filepath.Join(run, "banger", "bangerd.sock"))
			env.Setenv("LOG", filepath.Join(home, ".local", "state", "banger", "bangerd.log"))
			env.Defer(func() {
				killDaemon(filepath.Join(run, "banger", "bangerd.lock"))
				os.RemoveAll(run)
			})
			return os.MkdirAll(home, 0o700)
		},
		// [root]: the script runs as root (banger system install needs it).
		Condition: func(cond string) (bool, error) {
			if cond == "root" {
				return os.Geteuid() == 0, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"rawrpc":      rawRPC,
			"waitsock":    waitSock,
			"killdaemon9": killDaemon9,
			"waitpool":    waitPool,
			"envsubst":    envSubst,
			"netns":       netnsCmd,
			"capture":     capture,
		},
	})
}

// killDaemon makes sure no daemon outlives its script.
func killDaemon(lockPath string) {
	if pid := lockfile.ReadPID(lockPath); pid > 0 {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

var opIDPattern = regexp.MustCompile(`"op_id":"(op-[0-9a-f]{12})"`)

// rawrpc LINE sends LINE as-is to $SOCK and prints the raw answer; the op
// id it carries is kept in $OPID for later commands.
func rawRPC(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: rawrpc LINE")
	}
	conn, err := net.Dial("unix", ts.Getenv("SOCK"))
	ts.Check(err)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = fmt.Fprintf(conn, "%s\n", args[0])
	ts.Check(err)
	line, err := bufio.NewReader(conn).ReadString('\n')
	ts.Check(err)
	fmt.Fprint(ts.Stdout(), line)
	if m := opIDPattern.FindStringSubmatch(line); m != nil {
		ts.Setenv("OPID", m[1])
	}
}

// waitsock [PATH] waits until something listens on PATH (default $SOCK).
func waitSock(ts *testscript.TestScript, neg bool, args []string) {
	sock := ts.Getenv("SOCK")
	if len(args) == 1 {
		sock = args[0]
	}
	for i := 0; i < 500; i++ {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	ts.Fatalf("nothing listens on %s", sock)
}

// killdaemon9 kills the running daemon with SIGKILL, as a crash would,
// and waits until it is gone.
func killDaemon9(ts *testscript.TestScript, neg bool, args []string) {
	lock := filepath.Join(ts.Getenv("XDG_RUNTIME_DIR"), "banger", "bangerd.lock")
	pid := lockfile.ReadPID(lock)
	if pid == 0 {
		ts.Fatalf("no daemon pid in %s", lock)
	}
	ts.Check(syscall.Kill(pid, syscall.SIGKILL))
	for i := 0; i < 500; i++ {
		if l, err := lockfile.TryLock(lock); err == nil {
			l.Release()
			ts.Logf("killed bangerd pid %d", pid)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	ts.Fatalf("bangerd pid %d still holds its lock after SIGKILL", pid)
}

// fakeDaemon stands in for a bangerd of another protocol version: it holds
// the daemon lock like a real one and refuses requests with bad_version,
// except that with FAKE_PROTOCOL set it answers daemon.ping with that
// protocol version, as a daemon that accepts old pings would.
func fakeDaemon() {
	layout, err := paths.Resolve(os.Getenv, "")
	if err != nil {
		panic(err)
	}
	if err := layout.EnsureRuntimeDir(); err != nil {
		panic(err)
	}
	lock, err := lockfile.TryLock(layout.LockPath)
	if err != nil {
		panic(err)
	}
	lock.WritePID(os.Getpid())
	os.Remove(layout.SocketPath)
	ln, err := net.Listen("unix", layout.SocketPath)
	if err != nil {
		panic(err)
	}
	proto, _ := strconv.Atoi(os.Getenv("FAKE_PROTOCOL"))
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			line, err := bufio.NewReader(conn).ReadString('\n')
			if err != nil {
				return
			}
			var req struct{ Method string }
			json.Unmarshal([]byte(line), &req)
			var resp any = map[string]any{"error": map[string]any{
				"code": "bad_version", "message": "unsupported protocol version 1 (this server speaks 2)", "op_id": "op-000000000001"}}
			if proto != 0 && req.Method == "daemon.ping" {
				resp = map[string]any{"result": map[string]any{"version": "v9.9.9", "protocol_version": proto, "pid": os.Getpid()}}
			}
			json.NewEncoder(conn).Encode(resp)
		}()
	}
}

// netns VAR creates a network namespace for the script, named in $VAR,
// and destroys it (killing what runs in it) when the script ends.
// Everything the real helper does in a script happens inside one.
func netnsCmd(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: netns VAR")
	}
	ns, err := netns.Create()
	ts.Check(err)
	ts.Defer(func() {
		if err := ns.Destroy(); err != nil {
			ts.Logf("%v", err)
		}
	})
	ts.Setenv(args[0], ns.Name)
}

// capture stdout|stderr REGEXP VAR sets $VAR to the first submatch of
// REGEXP in the last command's output.
func capture(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 || (args[0] != "stdout" && args[0] != "stderr") {
		ts.Fatalf("usage: capture stdout|stderr REGEXP VAR")
	}
	re, err := regexp.Compile(args[1])
	ts.Check(err)
	m := re.FindStringSubmatch(ts.ReadFile(args[0]))
	if len(m) < 2 {
		ts.Fatalf("no match for %s in %s", args[1], args[0])
	}
	ts.Setenv(args[2], m[1])
}
