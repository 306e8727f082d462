package rpc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// envFlood makes the test binary a client that opens many connections to
// a socket (see floodMain).
const envFlood = "BANGER_RPC_TEST_FLOOD"

func TestMain(m *testing.M) {
	if sock := os.Getenv(envFlood); sock != "" {
		os.Exit(floodMain(sock, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// floodMain opens n connections (its argument) at once and sends
// nothing on them. On each it waits up to a second for the server to
// speak: a refusal arrives at once; a connection the server took stays
// silent. It prints "held=H refused=R slowest_refusal_ms=S first=<one
// refusal's message>", holds the connections until stdin is closed,
// then prints "closed=C": how many of the held ones the server closed.
func floodMain(sock string, args []string) int {
	n, _ := strconv.Atoi(args[0])
	type outcome struct {
		conn    net.Conn
		refusal *ErrorResponse
		after   time.Duration
		err     error
	}
	results := make(chan outcome, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		c, err := net.Dial("unix", sock)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		go func() {
			c.SetReadDeadline(start.Add(time.Second))
			line, err := bufio.NewReader(c).ReadBytes('\n')
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				results <- outcome{conn: c}
				return
			}
			var resp Response
			if json.Unmarshal(line, &resp) != nil || resp.Error == nil {
				results <- outcome{err: fmt.Errorf("%q, %v", line, err)}
				return
			}
			c.Close()
			results <- outcome{refusal: resp.Error, after: time.Since(start)}
		}()
	}
	var held []net.Conn
	refused, slowest, first := 0, time.Duration(0), ""
	for i := 0; i < n; i++ {
		o := <-results
		switch {
		case o.err != nil:
			fmt.Fprintln(os.Stderr, o.err)
			return 1
		case o.conn != nil:
			held = append(held, o.conn)
		default:
			refused++
			slowest = max(slowest, o.after)
			first = o.refusal.Message
		}
	}
	fmt.Printf("held=%d refused=%d slowest_refusal_ms=%d first=%s\n", len(held), refused, slowest.Milliseconds(), first)
	io.Copy(io.Discard, os.Stdin)
	closed := 0
	for _, c := range held {
		c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); errors.Is(err, io.EOF) {
			closed++
		}
	}
	fmt.Printf("closed=%d\n", closed)
	return 0
}

// holdConns opens n connections and proves the server took each (it
// answers a request on it); they stay open until the test ends.
func holdConns(t *testing.T, sock string, n int) []net.Conn {
	t.Helper()
	var conns []net.Conn
	for i := 0; i < n; i++ {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, `{"version":1,"method":"test.echo","params":{"text":"hi"}}`+"\n")
		var resp Response
		if err := json.NewDecoder(c).Decode(&resp); err != nil || resp.Error != nil {
			t.Fatalf("connection %d: %+v, %v", i, resp.Error, err)
		}
		conns = append(conns, c)
	}
	return conns
}

// callRefused makes a call that must be refused at once as unavailable,
// saying says.
func callRefused(t *testing.T, sock, says string) {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := Call(ctx, sock, "test.echo", echoParams{Text: "x"}, nil)
	var remote *ErrorResponse
	if !errors.As(err, &remote) || remote.Code != CodeUnavailable || !strings.Contains(remote.Message, says) || remote.OpID == "" {
		t.Fatalf("call over the limit: %v; want unavailable with an op id saying %q", err, says)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("refusal took %v; want it at once", d)
	}
}

// eventually retries a call until it succeeds (a closed connection is
// untracked once the server notices the hang-up).
func eventually(t *testing.T, sock string) {
	t.Helper()
	var err error
	for i := 0; i < 200; i++ {
		if err = Call(context.Background(), sock, "test.echo", echoParams{Text: "x"}, nil); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("call after a connection closed: %v", err)
}

func TestConnectionLimitPerUID(t *testing.T) {
	var mu sync.Mutex
	var observed []CallInfo
	sock := startServer(t, &Server{Methods: testMethods(), MaxConnsPerUID: 3, MaxConns: 100,
		Observe: func(_ context.Context, c CallInfo) { mu.Lock(); observed = append(observed, c); mu.Unlock() }})
	conns := holdConns(t, sock, 3)
	callRefused(t, sock, fmt.Sprintf("uid %d holds 3 connections to this server, the most one uid may", os.Getuid()))
	callRefused(t, sock, "the most one uid may")
	conns[0].Close()
	eventually(t, sock)

	// Refusals are observed, about once a second per uid rather than once
	// per connection.
	mu.Lock()
	defer mu.Unlock()
	refusals := 0
	for _, c := range observed {
		if c.Err != nil && c.Err.Code == CodeUnavailable {
			refusals++
		}
	}
	if refusals != 1 {
		t.Errorf("observed %d refusals in well under a second, want 1: %+v", refusals, observed)
	}
}

func TestConnectionLimitInAll(t *testing.T) {
	sock := startServer(t, &Server{Methods: testMethods(), MaxConnsPerUID: 100, MaxConns: 2})
	conns := holdConns(t, sock, 2)
	callRefused(t, sock, "the server holds 2 connections, the most it takes")
	conns[1].Close()
	eventually(t, sock)
}

// TestFirstRequestTimeout: a connection that sends nothing is closed at
// FirstRequestTimeout; one that has sent a request waits IdleTimeout.
func TestFirstRequestTimeout(t *testing.T) {
	sock := startServer(t, &Server{Methods: testMethods(), FirstRequestTimeout: 100 * time.Millisecond, IdleTimeout: time.Minute})
	silent, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	active := holdConns(t, sock, 1)[0]

	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("a connection that never sent a request: %v; want it closed (EOF) after 100ms", err)
	}
	time.Sleep(200 * time.Millisecond) // past FirstRequestTimeout, well short of IdleTimeout
	fmt.Fprintf(active, `{"version":1,"method":"test.echo","params":{"text":"again"}}`+"\n")
	var resp Response
	if err := json.NewDecoder(active).Decode(&resp); err != nil || resp.Error != nil {
		t.Fatalf("a connection idle between requests was closed early: %+v, %v", resp.Error, err)
	}
}

// TestFloodFromOneUIDDoesNotStarveAnother: a process running as nobody
// opens far more connections than its share and never sends a request;
// it gets exactly its share, the rest are refused at once, and a client
// of another uid is served all the while. Idle ones are then closed.
func TestFloodFromOneUIDDoesNotStarveAnother(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a client of another uid needs root to start")
	}
	const perUID, flood = 8, 100
	dir, err := os.MkdirTemp("", "rpcflood")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	sock := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(sock, 0o666)
	srv := &Server{Methods: testMethods(), MaxConnsPerUID: perUID, MaxConns: 64, FirstRequestTimeout: 2 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })

	// This test binary, where nobody can run it.
	self, _ := os.Executable()
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "flood")
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, strconv.Itoa(flood))
	cmd.Env = append(os.Environ(), envFlood+"="+sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	out := bufio.NewReader(stdout)
	report, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("flood client: %v", err)
	}
	var held, refused, slowest int
	var first string
	fmt.Sscanf(report, "held=%d refused=%d slowest_refusal_ms=%d", &held, &refused, &slowest)
	if _, rest, ok := strings.Cut(report, "first="); ok {
		first = strings.TrimSpace(rest)
	}
	if held != perUID || refused != flood-perUID {
		t.Errorf("flood of %d from one uid: %d held, %d refused; want %d held", flood, held, refused, perUID)
	}
	if want := fmt.Sprintf("uid 65534 holds %d connections", perUID); !strings.Contains(first, want) {
		t.Errorf("refusal says %q; want %q", first, want)
	}
	if slowest > 1000 {
		t.Errorf("slowest refusal took %d ms; want it at once", slowest)
	}

	// The flood is still held: another uid (root) is served, many times.
	for i := 0; i < 2*perUID; i++ {
		var got echoParams
		if err := Call(context.Background(), sock, "test.echo", echoParams{Text: "root"}, &got); err != nil || got.Text != "root" {
			t.Fatalf("call %d as root during the flood: %+v, %v", i, got, err)
		}
	}
	// The flood's silent connections are closed at FirstRequestTimeout.
	time.Sleep(2500 * time.Millisecond)
	stdin.Close()
	final, err := out.ReadString('\n')
	if err != nil || strings.TrimSpace(final) != fmt.Sprintf("closed=%d", perUID) {
		t.Errorf("after the first-request timeout the flood client reports %q, %v; want all %d closed", final, err, perUID)
	}
}
