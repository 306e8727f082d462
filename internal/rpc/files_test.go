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
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"banger/internal/buildinfo"
)

// TestCallWithFiles passes two open files with a request: the handler
// reads each through its own descriptor, in the order sent, and the
// server closes them once the handler returns.
func TestCallWithFiles(t *testing.T) {
	var seen []*os.File
	methods := map[string]Handler{
		"test.read": Typed(func(ctx context.Context, _ NoParams) ([]string, error) {
			var out []string
			for _, f := range FilesFromContext(ctx) {
				seen = append(seen, f)
				data, err := io.ReadAll(f)
				if err != nil {
					return nil, err
				}
				out = append(out, string(data))
			}
			return out, nil
		}),
	}
	sock := startServer(t, &Server{Methods: methods})

	dir := t.TempDir()
	var files []*os.File
	for _, text := range []string{"base", "cow"} {
		p := filepath.Join(dir, text)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files = append(files, f)
	}
	var got []string
	if err := CallWithFiles(context.Background(), sock, "test.read", nil, &got, files...); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "base,cow" {
		t.Fatalf("handler read %q, want base,cow", got)
	}
	for _, f := range seen {
		if _, err := f.Stat(); !errors.Is(err, os.ErrClosed) {
			t.Errorf("server left %s open after the handler returned (stat: %v)", f.Name(), err)
		}
	}
	// The caller's own copies are untouched.
	if _, err := files[0].Stat(); err != nil {
		t.Errorf("caller's file: %v", err)
	}

	// A plain call on the same server sees no files.
	if err := Call(context.Background(), sock, "test.read", nil, &got); err != nil || len(got) != 0 {
		t.Fatalf("call without files: %v, %q", err, got)
	}
}

// TestCallWithTooManyFiles: the client refuses to send more than
// MaxFiles, and a raw sender that does is answered bad_request.
func TestCallWithTooManyFiles(t *testing.T) {
	sock := startServer(t, &Server{Methods: testMethods()})
	var files []*os.File
	for range MaxFiles + 1 {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files = append(files, f)
	}
	err := CallWithFiles(context.Background(), sock, "test.echo", echoParams{Text: "x"}, nil, files...)
	if err == nil || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("sending %d files: %v", len(files), err)
	}
}

// TestServerRefusesTooManyFiles: a sender that attaches more than
// MaxFiles descriptors to a request gets bad_request, not a handler call.
func TestServerRefusesTooManyFiles(t *testing.T) {
	sock := startServer(t, &Server{Methods: testMethods()})
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var fds []int
	for range MaxFiles + 1 {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fds = append(fds, int(f.Fd()))
	}
	req := fmt.Sprintf(`{"version":%d,"method":"test.echo","params":{"text":"x"}}`+"\n", buildinfo.ProtocolVersion)
	if _, _, err := conn.(*net.UnixConn).WriteMsgUnix([]byte(req), unix.UnixRights(fds...), nil); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Error == nil || resp.Error.Code != CodeBadRequest || !strings.Contains(resp.Error.Message, "more than") {
		t.Fatalf("response %s, want bad_request about too many files", line)
	}
}
