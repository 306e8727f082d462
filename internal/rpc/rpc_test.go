package rpc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"banger/internal/buildinfo"
	"banger/internal/errdefs"
	"banger/internal/opid"
)

var mintedOpID = regexp.MustCompile(`^op-[0-9a-f]{12}$`)

type echoParams struct {
	Text string `json:"text"`
}

// startServer serves s on a fresh socket until the test ends and returns
// the socket path.
func startServer(t *testing.T, s *Server) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rpc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return sock
}

func testMethods() map[string]Handler {
	return map[string]Handler{
		"test.echo": Typed(func(ctx context.Context, p echoParams) (echoParams, error) {
			return p, nil
		}),
		"test.opid": Typed(func(ctx context.Context, _ NoParams) (string, error) {
			return opid.From(ctx), nil
		}),
		"test.peer": Typed(func(ctx context.Context, _ NoParams) (Peer, error) {
			p, _ := PeerFromContext(ctx)
			return p, nil
		}),
		"test.notfound": Typed(func(ctx context.Context, _ NoParams) (any, error) {
			return nil, fmt.Errorf("vm %q: %w", "ghost", errdefs.ErrNotFound)
		}),
		"test.plain": Typed(func(ctx context.Context, _ NoParams) (any, error) {
			return nil, errors.New("disk on fire")
		}),
		"test.panic": Typed(func(ctx context.Context, _ NoParams) (any, error) {
			panic("boom")
		}),
		"test.slow": Typed(func(ctx context.Context, _ NoParams) (string, error) {
			time.Sleep(200 * time.Millisecond)
			return "finished", nil
		}),
	}
}

// exchange sends raw lines on one connection and returns the decoded
// responses, one per line sent.
func exchange(t *testing.T, sock string, lines ...string) []Response {
	t.Helper()
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	var out []Response
	for _, line := range lines {
		if _, err := fmt.Fprintf(conn, "%s\n", line); err != nil {
			t.Fatalf("write %q: %v", line, err)
		}
		raw, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatalf("read answer to %q: %v", line, err)
		}
		var resp Response
		if err := json.Unmarshal(raw, &resp); err != nil {
			t.Fatalf("answer %q is not a Response: %v", raw, err)
		}
		out = append(out, resp)
	}
	return out
}

func TestDispatchStampsOpIDOnEveryError(t *testing.T) {
	sock := startServer(t, &Server{Methods: testMethods()})
	v := buildinfo.ProtocolVersion
	tests := []struct {
		name     string
		line     string
		wantCode Code
		wantOpID string // "" means a minted one
		wantMsg  string
	}{
		{"unknown method", fmt.Sprintf(`{"version":%d,"method":"vm.explode"}`, v), CodeUnknownMethod, "", `unknown method "vm.explode"`},
		{"unknown method keeps client id", fmt.Sprintf(`{"version":%d,"method":"vm.explode","op_id":"op-aaaaaaaaaaaa"}`, v), CodeUnknownMethod, "op-aaaaaaaaaaaa", "unknown method"},
		{"bad version", `{"version":99,"method":"test.echo"}`, CodeBadVersion, "", "unsupported protocol version 99"},
		{"missing version", `{"method":"test.echo"}`, CodeBadVersion, "", "unsupported protocol version 0"},
		{"bad version keeps client id", `{"version":99,"method":"test.echo","op_id":"op-bbbbbbbbbbbb"}`, CodeBadVersion, "op-bbbbbbbbbbbb", "protocol"},
		{"handler sentinel", fmt.Sprintf(`{"version":%d,"method":"test.notfound","op_id":"op-cccccccccccc"}`, v), CodeNotFound, "op-cccccccccccc", `vm "ghost": not found`},
		{"handler plain error", fmt.Sprintf(`{"version":%d,"method":"test.plain"}`, v), CodeInternal, "", "disk on fire"},
		{"handler panic", fmt.Sprintf(`{"version":%d,"method":"test.panic"}`, v), CodeInternal, "", "handler panic: boom"},
		{"malformed json", `{"version":`, CodeBadRequest, "", "malformed request"},
		{"not an object", `[1,2]`, CodeBadRequest, "", "malformed request"},
		{"unknown envelope field", fmt.Sprintf(`{"version":%d,"method":"test.echo","sudo":true}`, v), CodeBadRequest, "", `unknown field "sudo"`},
		{"trailing data", fmt.Sprintf(`{"version":%d,"method":"test.echo"} {}`, v), CodeBadRequest, "", "trailing data"},
		{"no method", fmt.Sprintf(`{"version":%d}`, v), CodeBadRequest, "", "method is required"},
		{"hostile op id", fmt.Sprintf(`{"version":%d,"method":"test.echo","op_id":"x\" level=ERROR"}`, v), CodeBadRequest, "", "op_id"},
		{"unknown params field", fmt.Sprintf(`{"version":%d,"method":"test.echo","params":{"txt":"hi"}}`, v), CodeBadRequest, "", `unknown field "txt"`},
		{"params where none taken", fmt.Sprintf(`{"version":%d,"method":"test.opid","params":{"x":1}}`, v), CodeBadRequest, "", "unknown field"},
		{"params of wrong type", fmt.Sprintf(`{"version":%d,"method":"test.echo","params":{"text":5}}`, v), CodeBadRequest, "", "params"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := exchange(t, sock, tt.line)[0]
			if resp.Error == nil {
				t.Fatalf("want error %s, got result %s", tt.wantCode, resp.Result)
			}
			e := resp.Error
			if e.Code != tt.wantCode {
				t.Errorf("code = %s, want %s (message %q)", e.Code, tt.wantCode, e.Message)
			}
			if !strings.Contains(e.Message, tt.wantMsg) {
				t.Errorf("message %q does not contain %q", e.Message, tt.wantMsg)
			}
			if tt.wantOpID != "" && e.OpID != tt.wantOpID {
				t.Errorf("op_id = %q, want the client's %q", e.OpID, tt.wantOpID)
			}
			if tt.wantOpID == "" && !mintedOpID.MatchString(e.OpID) {
				t.Errorf("op_id = %q, want a minted op-<12 hex>", e.OpID)
			}
			if resp.OpID != e.OpID {
				t.Errorf("response op_id %q differs from error op_id %q", resp.OpID, e.OpID)
			}
		})
	}
}

func TestCallReturnsTypedError(t *testing.T) {
	sock := startServer(t, &Server{Methods: testMethods()})
	ctx := opid.With(context.Background(), "op-0123456789ab")
	err := Call(ctx, sock, "test.notfound", nil, nil)
	var remote *ErrorResponse
	if !errors.As(err, &remote) {
		t.Fatalf("errors.As(%v) found no *ErrorResponse", err)
	}
	if remote.Code != CodeNotFound || remote.OpID != "op-0123456789ab" {
		t.Errorf("got code %s op_id %s, want not_found op-0123456789ab", remote.Code, remote.OpID)
	}
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("errors.Is(err, ErrNotFound) = false for %v", err)
	}
	if errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("errors.Is(err, ErrConflict) = true for a not_found error")
	}
	if want := `vm "ghost": not found (op-0123456789ab)`; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}

	// Without an op id on the context the server mints one and it still
	// reaches the client.
	err = Call(context.Background(), sock, "vm.explode", nil, nil)
	if !errors.As(err, &remote) || remote.Code != CodeUnknownMethod || !mintedOpID.MatchString(remote.OpID) {
		t.Fatalf("got %#v, want unknown_method with a minted op id", err)
	}
	if !strings.HasSuffix(err.Error(), "("+remote.OpID+")") {
		t.Errorf("Error() = %q does not end with the op id", err.Error())
	}
}

func TestClientOpIDReachesServer(t *testing.T) {
	sock := startServer(t, &Server{Methods: testMethods()})
	ctx := opid.With(context.Background(), "op-feedfacecafe")
	var got string
	if err := Call(ctx, sock, "test.opid", nil, &got); err != nil {
		t.Fatal(err)
	}
	if got != "op-feedfacecafe" {
		t.Errorf("server saw op id %q, want op-feedfacecafe", got)
	}
	if err := Call(context.Background(), sock, "test.opid", nil, &got); err != nil {
		t.Fatal(err)
	}
	if !mintedOpID.MatchString(got) {
		t.Errorf("server minted %q, want op-<12 hex>", got)
	}
}

func TestCallRoundTripAndPeer(t *testing.T) {
	sock := startServer(t, &Server{Methods: testMethods()})
	var out echoParams
	if err := Call(context.Background(), sock, "test.echo", echoParams{Text: "hello"}, &out); err != nil {
		t.Fatal(err)
	}
	if out.Text != "hello" {
		t.Errorf("echo = %q", out.Text)
	}
	var peer Peer
	if err := Call(context.Background(), sock, "test.peer", nil, &peer); err != nil {
		t.Fatal(err)
	}
	if peer.UID != uint32(os.Getuid()) || peer.PID != int32(os.Getpid()) {
		t.Errorf("peer = %+v, want uid %d pid %d", peer, os.Getuid(), os.Getpid())
	}
}

func TestOneConnectionServesManyRequests(t *testing.T) {
	sock := startServer(t, &Server{Methods: testMethods()})
	v := buildinfo.ProtocolVersion
	resps := exchange(t, sock,
		fmt.Sprintf(`{"version":%d,"method":"test.echo","params":{"text":"a"}}`, v),
		`not json at all`,
		fmt.Sprintf(`{"version":%d,"method":"test.echo","params":{"text":"b"}}`, v),
	)
	if string(resps[0].Result) != `{"text":"a"}` || resps[1].Error == nil || string(resps[2].Result) != `{"text":"b"}` {
		t.Fatalf("responses = %+v", resps)
	}
	if resps[0].OpID == "" || resps[0].OpID == resps[2].OpID {
		t.Errorf("each request needs its own op id: %q %q", resps[0].OpID, resps[2].OpID)
	}
}

func TestOversizedFrameRefusedAndServerKeepsServing(t *testing.T) {
	sock := startServer(t, &Server{Methods: testMethods(), MaxRequestBytes: 1024})
	big := fmt.Sprintf(`{"version":1,"method":"test.echo","params":{"text":"%s"}}`, strings.Repeat("x", 4096))
	resp := exchange(t, sock, big)[0]
	if resp.Error == nil || resp.Error.Code != CodeBadRequest || !strings.Contains(resp.Error.Message, "exceeds 1024 bytes") {
		t.Fatalf("oversized frame: %+v", resp.Error)
	}
	if !mintedOpID.MatchString(resp.Error.OpID) {
		t.Errorf("oversized frame error op_id = %q", resp.Error.OpID)
	}
	var out echoParams
	if err := Call(context.Background(), sock, "test.echo", echoParams{Text: "still here"}, &out); err != nil || out.Text != "still here" {
		t.Fatalf("server stopped serving after an oversized frame: %v", err)
	}
}

func TestAuthorizeRefusalIsUnauthorizedWithOpID(t *testing.T) {
	// Each connection is served by its own goroutine; the socket orders
	// them, but the race detector cannot see that.
	var mu sync.Mutex
	var observed []CallInfo
	sock := startServer(t, &Server{
		Methods: testMethods(),
		Authorize: func(p Peer) error {
			return fmt.Errorf("uid %d is not allowed", p.UID)
		},
		Observe: func(ctx context.Context, info CallInfo) {
			mu.Lock()
			defer mu.Unlock()
			observed = append(observed, info)
		},
	})
	ctx := opid.With(context.Background(), "op-111111111111")
	for _, method := range []string{"test.echo", "test.opid", "no.such"} {
		err := Call(ctx, sock, method, nil, nil)
		var remote *ErrorResponse
		if !errors.As(err, &remote) || remote.Code != CodeUnauthorized {
			t.Fatalf("%s: got %v, want unauthorized", method, err)
		}
		if !mintedOpID.MatchString(remote.OpID) {
			t.Errorf("%s: unauthorized op_id = %q", method, remote.OpID)
		}
		if !errors.Is(err, errdefs.ErrUnauthorized) {
			t.Errorf("%s: errors.Is(err, ErrUnauthorized) = false", method)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(observed) != 3 || observed[0].Err == nil || observed[0].Peer.UID != uint32(os.Getuid()) {
		t.Errorf("observer saw %+v", observed)
	}
}

func TestIdleConnectionIsClosed(t *testing.T) {
	sock := startServer(t, &Server{Methods: testMethods(), IdleTimeout: 50 * time.Millisecond})
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1)
	if _, err := conn.Read(buf); err == nil {
		t.Fatal("server sent data to an idle connection")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("server kept an idle connection open past its idle timeout")
	}
}

func TestShutdownLetsInFlightRequestFinish(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{Methods: testMethods()}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()

	// An idle connection must not hold shutdown up.
	idle, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()

	result := make(chan error, 1)
	go func() {
		var got string
		err := Call(context.Background(), sock, "test.slow", nil, &got)
		if err == nil && got != "finished" {
			err = fmt.Errorf("got %q", got)
		}
		result <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-result; err != nil {
		t.Fatalf("in-flight request was cut off by shutdown: %v", err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after shutdown")
	}
	if _, err := net.Dial("unix", sock); err == nil {
		t.Error("server still accepts connections after shutdown")
	}
}

func TestCallHonoursContext(t *testing.T) {
	sock := startServer(t, &Server{Methods: testMethods()})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := Call(ctx, sock, "test.slow", nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want deadline exceeded", err)
	}
}

func TestIsNotListening(t *testing.T) {
	dir := t.TempDir()
	err := Call(context.Background(), filepath.Join(dir, "missing.sock"), "x.y", nil, nil)
	if !IsNotListening(err) {
		t.Errorf("missing socket: IsNotListening(%v) = false", err)
	}
	// A socket file nobody listens on: what a killed server leaves.
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	err = Call(context.Background(), stale, "x.y", nil, nil)
	if !IsNotListening(err) {
		t.Errorf("stale socket: IsNotListening(%v) = false", err)
	}
}

func TestErrorResponseMapping(t *testing.T) {
	tests := []struct {
		err  error
		code Code
		msg  string
	}{
		{fmt.Errorf("name %q: %w", "x", errdefs.ErrInvalidArgument), CodeBadRequest, `name "x": invalid argument`},
		{fmt.Errorf("a: %w", errdefs.ErrConflict), CodeConflict, "a: conflict"},
		{fmt.Errorf("a: %w", errdefs.ErrUnauthorized), CodeUnauthorized, "a: unauthorized"},
		{fmt.Errorf("helper: %w", errdefs.ErrUnavailable), CodeUnavailable, "helper: unavailable"},
		{errors.New("x"), CodeInternal, "x"},
		// A downstream RPC error keeps its code, and its op id is not
		// repeated when it is the same operation.
		{fmt.Errorf("create tap: %w", &ErrorResponse{Code: CodeConflict, Message: "tap busy", OpID: "op-1"}), CodeConflict, "create tap: tap busy"},
		{fmt.Errorf("create tap: %w", &ErrorResponse{Code: CodeConflict, Message: "tap busy", OpID: "op-2"}), CodeConflict, "create tap: tap busy (op-2)"},
	}
	for _, tt := range tests {
		got := toErrorResponse(tt.err, "op-1")
		if got.Code != tt.code || got.Message != tt.msg || got.OpID != "op-1" {
			t.Errorf("toErrorResponse(%v) = %+v, want code %s message %q", tt.err, got, tt.code, tt.msg)
		}
	}
}
