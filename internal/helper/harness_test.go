package helper

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"banger/internal/opid"
	"banger/internal/rpc"
	"banger/internal/testutil/netns"
)

// The test binary doubles as the programs the tests need inside
// namespaces and under other uids; these variables pick which.
const (
	envRunHelper = "BANGER_TEST_RUN_HELPER" // banger-helper, with the process's args
	envClient    = "BANGER_TEST_CLIENT"     // send requests to this socket; args: method params-json pairs
	envEcho      = "BANGER_TEST_ECHO"       // TCP server on this address answering "peer=<ip>"
	envDial      = "BANGER_TEST_DIAL"       // dial this address, print what it answers
	envFlood     = "BANGER_TEST_FLOOD"      // open many silent connections to this socket (floodMain)
)

func TestMain(m *testing.M) {
	switch {
	case os.Getenv(envRunHelper) != "":
		os.Exit(Main(context.Background(), os.Args[1:], os.Stderr))
	case os.Getenv(envClient) != "":
		os.Exit(clientMain(os.Getenv(envClient), os.Args[1:]))
	case os.Getenv(envEcho) != "":
		os.Exit(echoMain(os.Getenv(envEcho)))
	case os.Getenv(envDial) != "":
		os.Exit(dialMain(os.Getenv(envDial)))
	case os.Getenv(envFlood) != "":
		os.Exit(floodMain(os.Getenv(envFlood), os.Args[1:]))
	}
	os.Exit(m.Run())
}

// clientMain sends each (method, params) pair on its own connection and
// prints the answers, one per line.
func clientMain(sock string, args []string) int {
	for i := 0; i+1 < len(args); i += 2 {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, `{"version":1,"method":%q,"params":%s}`+"\n", args[i], args[i+1])
		line, err := bufio.NewReader(conn).ReadString('\n')
		conn.Close()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Print(line)
	}
	return 0
}

func echoMain(addr string) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return 1
		}
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		fmt.Fprintf(c, "peer=%s\n", host)
		c.Close()
	}
}

func dialMain(addr string) int {
	c, err := net.DialTimeout("tcp", addr, 1500*time.Millisecond)
	if err != nil {
		fmt.Printf("error=%v\n", err)
		return 0
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		fmt.Printf("error=%v\n", err)
		return 0
	}
	fmt.Print(line)
	return 0
}

// helperProc is a banger-helper process running in a namespace.
type helperProc struct {
	t       testing.TB
	ns      *netns.NS
	dir     string // 0755: config, socket, state, log, a world-executable copy of this binary
	config  string
	socket  string
	state   string
	logPath string
	exe     string
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for
}

const nobody = 65534

// newHelperDir prepares the files for a helper: a config allowing uids.
func newHelperDir(t testing.TB, ns *netns.NS, allowed ...uint32) *helperProc {
	t.Helper()
	dir, err := os.MkdirTemp("", "bgh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	h := &helperProc{t: t, ns: ns, dir: dir,
		config:  filepath.Join(dir, "helper.toml"),
		socket:  filepath.Join(dir, "helper.sock"),
		state:   filepath.Join(dir, "state", "helper-state.json"),
		logPath: filepath.Join(dir, "helper.log"),
		exe:     filepath.Join(dir, "bin"),
	}
	uids := make([]string, len(allowed))
	for i, u := range allowed {
		uids[i] = fmt.Sprint(u)
	}
	writeFile(t, h.config, fmt.Sprintf("allowed_uids = [%s]\nmax_taps_per_uid = 8\n", strings.Join(uids, ", ")), 0o644)
	self, _ := os.Executable()
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, h.exe, string(data), 0o755)
	return h
}

func writeFile(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// start runs the helper in its namespace and waits until it serves.
func (h *helperProc) start(env ...string) {
	h.t.Helper()
	logf, err := os.OpenFile(h.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		h.t.Fatal(err)
	}
	defer logf.Close()
	cmd := h.ns.Cmd(h.exe, "--config", h.config, "--socket", h.socket, "--state", h.state)
	cmd.Env = append(append(os.Environ(), envRunHelper+"=1"), env...)
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.cmd = cmd
	exited := make(chan struct{})
	h.exited = exited
	go func() { cmd.Wait(); close(exited) }()
	h.t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	for i := 0; ; i++ {
		if c, err := net.Dial("unix", h.socket); err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			h.t.Fatalf("helper exited during start-up:\n%s", h.log())
		case <-time.After(10 * time.Millisecond):
		}
		if i > 1000 {
			h.t.Fatalf("helper did not start:\n%s", h.log())
		}
	}
}

// kill SIGKILLs the helper, as a crash would, and waits for it.
func (h *helperProc) kill() {
	h.cmd.Process.Signal(syscall.SIGKILL)
	h.waitExit()
	os.Remove(h.socket)
}

// waitExit waits for the helper to exit (after kill, or a failpoint).
func (h *helperProc) waitExit() {
	select {
	case <-h.exited:
	case <-time.After(10 * time.Second):
		h.t.Fatal("helper did not exit")
	}
}

func (h *helperProc) log() string {
	data, _ := os.ReadFile(h.logPath)
	return string(data)
}

// call makes a request as root (the test's uid) under opID.
func (h *helperProc) call(opID, method string, params, result any) error {
	ctx, cancel := context.WithTimeout(opid.With(context.Background(), opID), 20*time.Second)
	defer cancel()
	return rpc.Call(ctx, h.socket, method, params, result)
}

// request is one call for callsAs.
type request struct {
	method string
	params any
}

// callAs makes a request from a process running as uid.
func (h *helperProc) callAs(uid uint32, method string, params any) rpc.Response {
	h.t.Helper()
	return h.callsAs(uid, request{method, params})[0]
}

// callsAs makes requests, in order, from one process running as uid.
func (h *helperProc) callsAs(uid uint32, reqs ...request) []rpc.Response {
	h.t.Helper()
	var args []string
	for _, r := range reqs {
		raw, _ := json.Marshal(r.params)
		args = append(args, r.method, string(raw))
	}
	cmd := exec.Command(h.exe, args...)
	cmd.Env = append(os.Environ(), envClient+"="+h.socket)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		h.t.Fatalf("client as uid %d: %v\n%s", uid, err, stderr.String())
	}
	var resps []rpc.Response
	dec := json.NewDecoder(bytes.NewReader(out))
	for range reqs {
		var resp rpc.Response
		if err := dec.Decode(&resp); err != nil {
			h.t.Fatalf("client as uid %d printed %q: %v", uid, out, err)
		}
		resps = append(resps, resp)
	}
	return resps
}

// logRecords returns the helper's JSON log lines with the given msg.
func (h *helperProc) logRecords(msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(h.log()))
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}
