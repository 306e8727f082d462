package helper

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"banger/internal/rpc"
)

// syncBuffer is a bytes.Buffer safe for the logger and the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(s.b.Bytes()))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("helper log line %q is not JSON", sc.Text())
		}
		out = append(out, rec)
	}
	return out
}

func startHelper(t *testing.T, cfg Config) (string, *syncBuffer) {
	t.Helper()
	dir, err := os.MkdirTemp("", "helper")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "run", "helper.sock")
	logs := &syncBuffer{}
	h := &Helper{cfg: cfg, logger: slog.New(slog.NewJSONHandler(logs, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.ListenAndServe(ctx, sock) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ListenAndServe: %v", err)
		}
	})
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i > 500 {
			t.Fatal("helper socket never appeared")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return sock, logs
}

func callLines(logs *syncBuffer, t *testing.T) []map[string]any {
	var calls []map[string]any
	for _, rec := range logs.lines(t) {
		if msg := rec["msg"]; msg == "helper rpc completed" || msg == "helper rpc failed" {
			calls = append(calls, rec)
		}
	}
	return calls
}

func TestHelperAdoptsOpIDAndLogsOneLinePerCall(t *testing.T) {
	sock, logs := startHelper(t, Config{AllowedUIDs: []uint32{uint32(os.Getuid())}})
	ctx := rpc.WithOpID(context.Background(), "op-0000000000aa")
	var st StatusResult
	if err := rpc.Call(ctx, sock, "helper.status", nil, &st); err != nil {
		t.Fatal(err)
	}
	if st.ProtocolVersion != 1 || st.PeerUID != uint32(os.Getuid()) {
		t.Errorf("status = %+v", st)
	}
	err := rpc.Call(rpc.WithOpID(context.Background(), "op-0000000000bb"), sock, "tap.explode", nil, nil)
	var remote *rpc.ErrorResponse
	if !errors.As(err, &remote) || remote.Code != rpc.CodeUnknownMethod || remote.OpID != "op-0000000000bb" {
		t.Fatalf("unknown method: %v", err)
	}

	calls := callLines(logs, t)
	if len(calls) != 2 {
		t.Fatalf("want exactly one line per call, got %v", calls)
	}
	ok, failed := calls[0], calls[1]
	if ok["msg"] != "helper rpc completed" || ok["op_id"] != "op-0000000000aa" || ok["method"] != "helper.status" ||
		ok["peer_uid"] != float64(os.Getuid()) || ok["duration_ms"] == nil {
		t.Errorf("completed line = %v", ok)
	}
	if failed["msg"] != "helper rpc failed" || failed["op_id"] != "op-0000000000bb" || failed["code"] != "unknown_method" {
		t.Errorf("failed line = %v", failed)
	}
}

func TestHelperRefusesUIDNotAllowed(t *testing.T) {
	sock, logs := startHelper(t, Config{AllowedUIDs: []uint32{uint32(os.Getuid()) + 1}})
	err := rpc.Call(context.Background(), sock, "helper.status", nil, nil)
	var remote *rpc.ErrorResponse
	if !errors.As(err, &remote) || remote.Code != rpc.CodeUnauthorized || remote.OpID == "" {
		t.Fatalf("got %v, want unauthorized with an op id", err)
	}
	calls := callLines(logs, t)
	if len(calls) != 1 || calls[0]["code"] != "unauthorized" || calls[0]["op_id"] != remote.OpID {
		t.Errorf("refusal lines = %v", calls)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte("allowed_uids = [1000, 1001]\n"), 0o644)
	cfg, err := LoadConfig(good)
	if err != nil || len(cfg.AllowedUIDs) != 2 || cfg.AllowedUIDs[1] != 1001 {
		t.Fatalf("LoadConfig = %+v, %v", cfg, err)
	}
	for name, content := range map[string]string{
		"unknown.toml": "allowed_uids = [1]\nallow_everyone = true\n",
		"type.toml":    "allowed_uids = \"1000\"\n",
		"syntax.toml":  "allowed_uids = [\n",
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		if _, err := LoadConfig(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %v does not name the file", name, err)
		}
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.toml")); err == nil {
		t.Error("missing config accepted")
	}
}

func TestMainRefusesToStartWithoutAllowedUIDs(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "helper.toml")
	os.WriteFile(cfg, []byte("allowed_uids = []\n"), 0o644)
	var stderr bytes.Buffer
	code := Main(context.Background(), []string{"--config", cfg, "--socket", filepath.Join(dir, "h.sock")}, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "no allowed uids") {
		t.Errorf("Main = %d, stderr %s", code, stderr.String())
	}
	stderr.Reset()
	if code := Main(context.Background(), []string{"--allow-uid", "nobody"}, &stderr); code != 2 {
		t.Errorf("bad --allow-uid: exit %d, stderr %s", code, stderr.String())
	}
}
