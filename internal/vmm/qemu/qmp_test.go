package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const greeting = `{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}`

// qmpRequest is a command as the fake server sees it.
type qmpRequest struct {
	Execute   string          `json:"execute"`
	Arguments json.RawMessage `json:"arguments"`
	ID        json.RawMessage `json:"id"`
}

// fakeQMP serves one connection at a time on a unix socket: it sends
// greet (unless empty) and then, for each command, whatever lines
// respond returns (a reply built from the request's id, events, ...).
type fakeQMP struct {
	path     string
	greet    string
	respond  func(req qmpRequest) []string
	requests chan qmpRequest
	hangUpOn string // a command the server answers by closing the connection
}

func newFakeQMP(t *testing.T, greet string, respond func(qmpRequest) []string) *fakeQMP {
	t.Helper()
	f := &fakeQMP{path: filepath.Join(t.TempDir(), "qmp.sock"), greet: greet, respond: respond, requests: make(chan qmpRequest, 100)}
	ln, err := net.Listen("unix", f.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			f.serve(conn)
		}
	}()
	return f
}

func (f *fakeQMP) serve(conn net.Conn) {
	defer conn.Close()
	if f.greet != "" {
		fmt.Fprintf(conn, "%s\r\n", f.greet)
	}
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		var req qmpRequest
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			fmt.Fprintf(conn, `{"error": {"class": "GenericError", "desc": "JSON parse error"}}`+"\r\n")
			continue
		}
		f.requests <- req
		if req.Execute == f.hangUpOn {
			return
		}
		for _, line := range f.respond(req) {
			fmt.Fprintf(conn, "%s\r\n", line)
		}
	}
}

func reply(req qmpRequest, ret string) string {
	return fmt.Sprintf(`{"return": %s, "id": %s}`, ret, req.ID)
}

const powerdownEvent = `{"timestamp": {"seconds": 1795326137, "microseconds": 122680}, "event": "POWERDOWN"}`

// qemuLike answers as QEMU would, with events around the replies.
func qemuLike(req qmpRequest) []string {
	switch req.Execute {
	case "qmp_capabilities":
		return []string{reply(req, "{}")}
	case "query-status":
		return []string{
			`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "RTC_CHANGE", "data": {"offset": 0}}`,
			reply(req, `{"status": "running", "singlestep": false, "running": true}`),
		}
	case "system_powerdown":
		// QEMU sends the event before the reply.
		return []string{powerdownEvent, reply(req, "{}")}
	case "device_del":
		return []string{fmt.Sprintf(`{"id": %s, "error": {"class": "DeviceNotFound", "desc": "Device 'nope' not found"}}`, req.ID)}
	}
	return []string{fmt.Sprintf(`{"error": {"class": "CommandNotFound", "desc": "The command %s has not been found"}, "id": %s}`, req.Execute, req.ID)}
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestQMP(t *testing.T) {
	f := newFakeQMP(t, greeting, qemuLike)
	ctx := testCtx(t, 5*time.Second)
	q, err := DialQMP(ctx, f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if q.Version != "7.2.22" {
		t.Errorf("version = %q", q.Version)
	}
	if req := <-f.requests; req.Execute != "qmp_capabilities" || string(req.ID) != `"banger-1"` {
		t.Errorf("first command = %s id %s, want qmp_capabilities with an id", req.Execute, req.ID)
	}

	var st runStatus
	if err := q.Execute(ctx, "query-status", nil, &st); err != nil {
		t.Fatal(err)
	}
	if st.Status != "running" || !st.Running {
		t.Errorf("query-status = %+v", st)
	}
	if err := q.Execute(ctx, "system_powerdown", nil, nil); err != nil {
		t.Fatalf("an event before the reply: %v", err)
	}

	err = q.Execute(ctx, "device_del", map[string]string{"id": "nope"}, nil)
	var qe *QMPError
	if !errors.As(err, &qe) || qe.Class != "DeviceNotFound" || qe.Desc != "Device 'nope' not found" {
		t.Fatalf("error reply = %v, want a DeviceNotFound QMPError", err)
	}
	if !strings.Contains(err.Error(), "qmp device_del: DeviceNotFound: Device 'nope' not found") {
		t.Errorf("error text %q", err)
	}
	<-f.requests // query-status
	<-f.requests // system_powerdown
	if req := <-f.requests; string(req.Arguments) != `{"id":"nope"}` {
		t.Errorf("arguments sent: %s", req.Arguments)
	}

	// The connection stays usable after an error reply.
	if err := q.Execute(ctx, "query-status", nil, &st); err != nil {
		t.Fatalf("after an error reply: %v", err)
	}
}

func TestQMPSkipsStaleReplies(t *testing.T) {
	f := newFakeQMP(t, greeting, func(req qmpRequest) []string {
		if req.Execute == "query-status" {
			return []string{
				`{"return": {"status": "paused", "running": false}, "id": "banger-0"}`,
				powerdownEvent,
				reply(req, `{"status": "running", "running": true}`),
			}
		}
		return qemuLike(req)
	})
	ctx := testCtx(t, 5*time.Second)
	q, err := DialQMP(ctx, f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var st runStatus
	if err := q.Execute(ctx, "query-status", nil, &st); err != nil || !st.Running {
		t.Fatalf("query-status = %+v, %v; want the reply with this call's id", st, err)
	}
}

func TestQMPFailures(t *testing.T) {
	t.Run("not a greeting", func(t *testing.T) {
		f := newFakeQMP(t, `{"hello": 1}`, qemuLike)
		if _, err := DialQMP(testCtx(t, 5*time.Second), f.path); err == nil || !strings.Contains(err.Error(), "greet") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("capabilities refused", func(t *testing.T) {
		f := newFakeQMP(t, greeting, func(req qmpRequest) []string {
			return []string{fmt.Sprintf(`{"error": {"class": "GenericError", "desc": "Capabilities negotiation is already complete"}, "id": %s}`, req.ID)}
		})
		_, err := DialQMP(testCtx(t, 5*time.Second), f.path)
		var qe *QMPError
		if !errors.As(err, &qe) || qe.Class != "GenericError" {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("silent peer", func(t *testing.T) {
		f := newFakeQMP(t, "", qemuLike)
		start := time.Now()
		_, err := DialQMP(testCtx(t, 200*time.Millisecond), f.path)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the context's deadline", err)
		}
		if time.Since(start) > 2*time.Second {
			t.Errorf("took %s", time.Since(start))
		}
	})
	t.Run("cancelled mid-call", func(t *testing.T) {
		f := newFakeQMP(t, greeting, func(req qmpRequest) []string {
			if req.Execute == "query-status" {
				return nil // never answers
			}
			return qemuLike(req)
		})
		q, err := DialQMP(testCtx(t, 5*time.Second), f.path)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		if err := q.Execute(ctx, "query-status", nil, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if err := q.Execute(testCtx(t, time.Second), "query-status", nil, nil); err == nil {
			t.Fatal("a connection left mid-reply was used again")
		}
	})
	t.Run("peer hangs up", func(t *testing.T) {
		f := newFakeQMP(t, greeting, qemuLike)
		f.hangUpOn = "query-status"
		q, err := DialQMP(testCtx(t, 5*time.Second), f.path)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		if err := q.Execute(testCtx(t, 5*time.Second), "query-status", nil, nil); err == nil {
			t.Fatal("no error from a connection the peer closed")
		}
	})
}
