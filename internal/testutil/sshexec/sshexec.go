// Package sshexec is an SSH server for tests that stands in for a
// guest's sshd: it accepts one client key, shows one host key, and runs
// each exec request with /bin/sh -c on this host, with its streams and
// exit status, as OpenSSH does. Tests of code that drives guests over
// SSH run against it where booting a real guest is the end-to-end
// tier's job.
package sshexec

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"golang.org/x/crypto/ssh"
)

// Server is a running test SSH server.
type Server struct {
	Addr    string
	HostKey ssh.Signer
	Client  ssh.Signer // the key it accepts
	// Dir is where commands run (their working directory).
	Dir string

	ln       net.Listener
	frozen   atomic.Bool
	logins   atomic.Int64
	sessions atomic.Int64
	mu       sync.Mutex
	conns    []net.Conn
}

// Start starts a server on 127.0.0.1 running commands in dir; it stops
// when the test ends.
func Start(t testing.TB, dir string) *Server {
	t.Helper()
	s := &Server{Dir: dir, HostKey: newSigner(t), Client: newSigner(t)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln, s.Addr = ln, ln.Addr().String()
	var wg sync.WaitGroup
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, conn)
			s.mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); s.serve(conn) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.DropConnections(); wg.Wait() })
	return s
}

func newSigner(t testing.TB) ssh.Signer {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Logins is how many connections logged in.
func (s *Server) Logins() int { return int(s.logins.Load()) }

// Sessions is how many commands were started.
func (s *Server) Sessions() int { return int(s.sessions.Load()) }

// Freeze makes the server stop answering: new sessions are left
// unanswered and running ones are never closed, as a guest that hung.
func (s *Server) Freeze() { s.frozen.Store(true) }

// DropConnections closes every connection, as a guest that rebooted.
func (s *Server) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

func (s *Server) serve(conn net.Conn) {
	defer conn.Close()
	want := s.Client.PublicKey().Marshal()
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
		if bytes.Equal(key.Marshal(), want) {
			s.logins.Add(1)
			return &ssh.Permissions{}, nil
		}
		return nil, errors.New("not authorized")
	}}
	cfg.AddHostKey(s.HostKey)
	sc, chans, reqs, err := ssh.NewServerConn(conn, cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	var held []ssh.NewChannel
	for nc := range chans {
		if s.frozen.Load() {
			held = append(held, nc) // never answered
			continue
		}
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "sessions only")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go s.session(ch, creqs)
	}
	_ = held
}

// session runs the channel's exec request, answering signal requests
// by signalling the command's process group.
func (s *Server) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var cmd *exec.Cmd
	done := make(chan struct{})
	for req := range reqs {
		if s.frozen.Load() {
			select {} // a hung guest answers nothing, ever
		}
		switch req.Type {
		case "exec":
			if cmd != nil || len(req.Payload) < 4 {
				req.Reply(false, nil)
				continue
			}
			n := binary.BigEndian.Uint32(req.Payload)
			command := string(req.Payload[4 : 4+min(int(n), len(req.Payload)-4)])
			cmd = exec.Command("/bin/sh", "-c", command)
			cmd.Dir = s.Dir
			cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := cmd.Start(); err != nil {
				req.Reply(false, nil)
				return
			}
			s.sessions.Add(1)
			req.Reply(true, nil)
			go func() {
				defer close(done)
				status := uint32(0)
				if err := cmd.Wait(); err != nil {
					status = 255
					var ee *exec.ExitError
					if errors.As(err, &ee) && ee.ExitCode() >= 0 {
						status = uint32(ee.ExitCode())
					}
				}
				ch.CloseWrite()
				ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, status))
				ch.Close()
			}()
		case "signal":
			if cmd != nil && cmd.Process != nil {
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			}
			req.Reply(true, nil)
		default:
			req.Reply(req.Type == "env", nil)
		}
	}
	if cmd != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	io.Copy(io.Discard, ch)
}
