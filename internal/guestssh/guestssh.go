// Package guestssh is the daemon's SSH client to its guests: a login
// with the daemon's key to a server that must show the host key banger
// pinned for that VM, one connection per VM kept open and shared by the
// commands run over it (the handshake is what costs under emulation, a
// session on an open connection is cheap), and commands run with
// streams, an exit status, and cancellation.
package guestssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// ErrHostKeyMismatch: the guest answered with a host key other than the
// one banger gave it.
var ErrHostKeyMismatch = errors.New("host key mismatch")

// Target is how to reach one VM's SSH server.
type Target struct {
	VMID    string        // what the pool keys its connection by
	Name    string        // the VM's name, for messages
	Addr    string        // host:port
	User    string        // "root" when empty
	Signer  ssh.Signer    // the daemon's key
	HostKey ssh.PublicKey // the key pinned for the VM
}

const (
	dialLimit      = 3 * time.Second
	handshakeLimit = 10 * time.Second
)

// PinnedHostKey accepts exactly the pinned key.
func PinnedHostKey(pinned ssh.PublicKey) ssh.HostKeyCallback {
	want := pinned.Marshal()
	return func(_ string, _ net.Addr, key ssh.PublicKey) error {
		if !bytes.Equal(key.Marshal(), want) {
			return ErrHostKeyMismatch
		}
		return nil
	}
}

func (t Target) config() *ssh.ClientConfig {
	user := t.User
	if user == "" {
		user = "root"
	}
	return &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(t.Signer)},
		HostKeyCallback: PinnedHostKey(t.HostKey),
		Timeout:         handshakeLimit,
	}
}

// Dial makes one SSH connection to t.
func Dial(ctx context.Context, t Target) (*ssh.Client, error) {
	if t.Signer == nil || t.HostKey == nil {
		return nil, fmt.Errorf("ssh to vm %s: no key or no pinned host key", t.Name)
	}
	var dialer net.Dialer
	dctx, cancel := context.WithTimeout(ctx, dialLimit)
	conn, err := dialer.DialContext(dctx, "tcp", t.Addr)
	cancel()
	if err != nil {
		return nil, err
	}
	// The handshake is bounded by a deadline and by ctx.
	conn.SetDeadline(time.Now().Add(handshakeLimit))
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	c, chans, reqs, err := ssh.NewClientConn(conn, t.Addr, t.config())
	stopped := stop()
	if err != nil {
		conn.Close()
		if !stopped {
			return nil, ctx.Err()
		}
		return nil, err
	}
	if !stopped {
		conn.Close()
		return nil, ctx.Err()
	}
	conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// Pool keeps one open connection per VM.
type Pool struct {
	mu    sync.Mutex
	conns map[string]*pooled
}

type pooled struct {
	client *ssh.Client
	addr   string
	key    []byte
}

// Client is the pool's connection to t, dialled when there is none, or
// when the one there was made to another address or host key.
func (p *Pool) Client(ctx context.Context, t Target) (*ssh.Client, error) {
	p.mu.Lock()
	if c := p.conns[t.VMID]; c != nil && c.addr == t.Addr && bytes.Equal(c.key, t.HostKey.Marshal()) {
		p.mu.Unlock()
		return c.client, nil
	}
	p.mu.Unlock()
	client, err := Dial(ctx, t)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		p.conns = map[string]*pooled{}
	}
	if old := p.conns[t.VMID]; old != nil {
		old.client.Close()
	}
	p.conns[t.VMID] = &pooled{client: client, addr: t.Addr, key: t.HostKey.Marshal()}
	gone := make(chan struct{})
	go func() {
		client.Wait()
		close(gone)
		p.forget(t.VMID, client)
	}()
	go p.keepAlive(t.VMID, client, gone)
	return client, nil
}

// keepaliveEvery is how often an idle pooled connection is checked; a
// guest that does not answer within it loses the connection.
const keepaliveEvery = 15 * time.Second

// keepAlive asks the guest's server for an answer every keepaliveEvery
// and closes the connection when none comes, so a frozen guest is
// noticed before a command waits on it.
func (p *Pool) keepAlive(vmID string, client *ssh.Client, gone <-chan struct{}) {
	tick := time.NewTicker(keepaliveEvery)
	defer tick.Stop()
	for {
		select {
		case <-gone:
			return
		case <-tick.C:
		}
		answered := make(chan error, 1)
		go func() {
			_, _, err := client.SendRequest("keepalive@openssh.com", true, nil)
			answered <- err
		}()
		select {
		case err := <-answered:
			if err == nil {
				continue
			}
		case <-time.After(keepaliveEvery):
		case <-gone:
			return
		}
		p.forget(vmID, client)
		client.Close()
		return
	}
}

// forget drops client from the pool if it is still the VM's.
func (p *Pool) forget(vmID string, client *ssh.Client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.conns[vmID]; c != nil && c.client == client {
		delete(p.conns, vmID)
	}
}

// Drop closes the VM's connection, if the pool has one: the VM stopped.
func (p *Pool) Drop(vmID string) {
	p.mu.Lock()
	c := p.conns[vmID]
	delete(p.conns, vmID)
	p.mu.Unlock()
	if c != nil {
		c.client.Close()
	}
}

// Close closes every connection.
func (p *Pool) Close() {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		c.client.Close()
	}
}

// Len is how many connections the pool holds.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Cmd is a command to run in the guest through its shell.
type Cmd struct {
	Command string
	Stdin   io.Reader // nil: an empty, closed standard input
	Stdout  io.Writer // nil: discarded
	Stderr  io.Writer // nil: discarded
}

// ExitError is a command that ran and did not succeed.
type ExitError struct {
	Status int    // its exit status; -1 when a signal ended it
	Signal string // the signal, when one did
}

func (e *ExitError) Error() string {
	if e.Signal != "" {
		return "killed by signal " + e.Signal
	}
	return fmt.Sprintf("exit status %d", e.Status)
}

// Run runs c on t over the pool's connection, and waits for it. A
// connection that turns out to be dead (the guest rebooted) is replaced
// once. Cancelling ctx ends the command (SIGTERM, then the session is
// closed); a guest that does not let go of the session within
// cancelGrace loses the whole connection, so nothing waits on a guest
// that stopped answering.
func (p *Pool) Run(ctx context.Context, t Target, c Cmd) error {
	client, err := p.Client(ctx, t)
	if err != nil {
		return err
	}
	opened, err := p.runOn(ctx, t, client, c)
	if opened || ctx.Err() != nil {
		return err
	}
	p.forget(t.VMID, client)
	client.Close()
	if client, err = p.Client(ctx, t); err != nil {
		return err
	}
	if opened, err = p.runOn(ctx, t, client, c); !opened && ctx.Err() == nil {
		return fmt.Errorf("ssh session to vm %s: %w", t.Name, err)
	}
	return err
}

// cancelGrace is how long a cancelled command's guest has to close its
// session before the connection is dropped.
const cancelGrace = 3 * time.Second

// runOn runs c in a new session on client, and says whether a session
// was opened at all (if not, the connection may be dead).
func (p *Pool) runOn(ctx context.Context, t Target, client *ssh.Client, c Cmd) (opened bool, err error) {
	done := make(chan struct{})
	defer close(done)
	var mu sync.Mutex
	var sess *ssh.Session
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		s := sess
		mu.Unlock()
		if s != nil {
			s.Signal(ssh.SIGTERM)
			s.Close()
		}
		select {
		case <-done:
		case <-time.After(cancelGrace):
			p.forget(t.VMID, client)
			client.Close()
		}
	})
	defer stop()
	s, err := client.NewSession()
	if err != nil {
		return ctx.Err() != nil, err
	}
	mu.Lock()
	sess = s
	mu.Unlock()
	if ctx.Err() != nil {
		s.Close()
		return true, ctx.Err()
	}
	err = runSession(s, c)
	if ctx.Err() != nil {
		return true, ctx.Err()
	}
	return true, err
}

func runSession(sess *ssh.Session, c Cmd) error {
	defer sess.Close()
	end := func() {
		sess.Signal(ssh.SIGTERM)
		sess.Close()
	}
	// A writer that refuses more (a CapWriter past its cap) ends the
	// session: else the guest, blocked on a full window, never exits,
	// and Wait waits for ever.
	var werr writeErr
	sess.Stdin = c.Stdin
	sess.Stdout = &endOnError{w: orDiscard(c.Stdout), end: end, err: &werr}
	sess.Stderr = &endOnError{w: orDiscard(c.Stderr), end: end, err: &werr}
	if err := sess.Start(c.Command); err != nil {
		return err
	}
	err := sess.Wait()
	if first := werr.get(); first != nil {
		return first
	}
	var ee *ssh.ExitError
	switch {
	case errors.As(err, &ee):
		if ee.Signal() != "" {
			return &ExitError{Status: -1, Signal: ee.Signal()}
		}
		return &ExitError{Status: ee.ExitStatus()}
	case err != nil:
		var missing *ssh.ExitMissingError
		if errors.As(err, &missing) {
			return errors.New("the guest closed the session without an exit status")
		}
		return err
	}
	return nil
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// writeErr keeps the first error a session's writers returned.
type writeErr struct {
	mu  sync.Mutex
	err error
}

func (w *writeErr) set(err error) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return false
	}
	w.err = err
	return true
}

func (w *writeErr) get() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// endOnError passes writes on to w, and ends the session at its first
// error.
type endOnError struct {
	w   io.Writer
	end func()
	err *writeErr
}

func (e *endOnError) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil && e.err.set(err) {
		go e.end()
	}
	return n, err
}
