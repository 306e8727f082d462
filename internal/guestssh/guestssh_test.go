package guestssh_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"banger/internal/guestssh"
	"banger/internal/testutil/sshexec"
)

func target(s *sshexec.Server) guestssh.Target {
	return guestssh.Target{VMID: "vm1", Name: "dev", Addr: s.Addr, Signer: s.Client, HostKey: s.HostKey.PublicKey()}
}

func TestRunStreamsAndExitStatus(t *testing.T) {
	s := sshexec.Start(t, t.TempDir())
	var p guestssh.Pool
	defer p.Close()
	ctx := context.Background()
	var out bytes.Buffer
	if err := p.Run(ctx, target(s), guestssh.Cmd{Command: "tr a-z A-Z", Stdin: strings.NewReader("hello"), Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "HELLO" {
		t.Errorf("stdout %q, want HELLO", out.String())
	}
	err := p.Run(ctx, target(s), guestssh.Cmd{Command: "exit 7"})
	var ee *guestssh.ExitError
	if !errors.As(err, &ee) || ee.Status != 7 {
		t.Errorf("exit 7: got %v, want an ExitError with status 7", err)
	}
	if _, err := p.Output(ctx, target(s), "echo oops >&2; exit 2", nil, 100); err == nil || !strings.Contains(err.Error(), "oops") {
		t.Errorf("a failing command's error %v does not carry its stderr", err)
	}
	if got := s.Logins(); got != 1 {
		t.Errorf("three commands made %d logins; the pool should keep one connection", got)
	}
}

func TestOutputIsBounded(t *testing.T) {
	s := sshexec.Start(t, t.TempDir())
	var p guestssh.Pool
	defer p.Close()
	// A guest that goes on sending: the session ends at the cap, rather
	// than waiting for a command that never finishes.
	out, err := p.Output(context.Background(), target(s), "cat /dev/zero", nil, 1000)
	if !errors.Is(err, guestssh.ErrTooMuch) {
		t.Fatalf("100000 bytes against a 1000-byte cap: err %v, want ErrTooMuch", err)
	}
	if len(out) > 1000 {
		t.Errorf("kept %d bytes past the cap", len(out))
	}
	if out, err := p.Output(context.Background(), target(s), "printf 12345", nil, 5); err != nil || string(out) != "12345" {
		t.Errorf("exactly the cap: %q, %v", out, err)
	}
}

func TestHostKeyMismatchRefused(t *testing.T) {
	s := sshexec.Start(t, t.TempDir())
	other := sshexec.Start(t, t.TempDir())
	tg := target(s)
	tg.HostKey = other.HostKey.PublicKey()
	var p guestssh.Pool
	defer p.Close()
	err := p.Run(context.Background(), tg, guestssh.Cmd{Command: "true"})
	if !errors.Is(err, guestssh.ErrHostKeyMismatch) {
		t.Fatalf("another host key: err %v, want ErrHostKeyMismatch", err)
	}
	if s.Sessions() != 0 {
		t.Errorf("a command ran on a server with the wrong host key")
	}
}

func TestPoolRedialsAfterTheGuestDropsTheConnection(t *testing.T) {
	s := sshexec.Start(t, t.TempDir())
	var p guestssh.Pool
	defer p.Close()
	ctx := context.Background()
	if err := p.Run(ctx, target(s), guestssh.Cmd{Command: "true"}); err != nil {
		t.Fatal(err)
	}
	s.DropConnections()
	deadline := time.Now().Add(5 * time.Second)
	for p.Len() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.Run(ctx, target(s), guestssh.Cmd{Command: "true"}); err != nil {
		t.Fatalf("after the guest dropped the connection: %v", err)
	}
	if s.Logins() != 2 {
		t.Errorf("logins %d, want 2 (one redial)", s.Logins())
	}
	p.Drop("vm1")
	if p.Len() != 0 {
		t.Errorf("Drop left %d connections", p.Len())
	}
}

func TestCancelEndsTheCommand(t *testing.T) {
	s := sshexec.Start(t, t.TempDir())
	var p guestssh.Pool
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := p.Run(ctx, target(s), guestssh.Cmd{Command: "sleep 30"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the context's", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("cancelling took %s", time.Since(start))
	}
}

// TestCancelOnAHungGuest: a guest that stops answering — it neither
// opens sessions nor closes them — holds a cancelled command no longer
// than the grace, and loses its connection.
func TestCancelOnAHungGuest(t *testing.T) {
	s := sshexec.Start(t, t.TempDir())
	var p guestssh.Pool
	defer p.Close()
	if err := p.Run(context.Background(), target(s), guestssh.Cmd{Command: "true"}); err != nil {
		t.Fatal(err)
	}
	s.Freeze()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	start := time.Now()
	err := p.Run(ctx, target(s), guestssh.Cmd{Command: "true"})
	cancel()
	if err == nil {
		t.Errorf("a command on a hung guest succeeded")
	}
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("a command on a hung guest took %s after cancelling", took)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.Len() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if p.Len() != 0 {
		t.Errorf("the hung guest's connection is still pooled")
	}
}
