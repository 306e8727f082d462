package rpc

import (
	"context"
	"fmt"
	"net"
	"time"

	"banger/internal/opid"
)

// Connection limits of a Server whose fields leave them unset.
const (
	DefaultMaxConnsPerUID = 64
	DefaultMaxConns       = 512
)

// unknownUID keys connections whose peer the kernel could not name
// ((uid_t)-1 is no one's uid); they share one uid's allowance.
const unknownUID = ^uint32(0)

// refusalWriteTimeout bounds the answer to a refused connection. It goes
// to an empty socket buffer, so it never waits in practice; the bound
// keeps a pathological client from holding up the accept loop.
const refusalWriteTimeout = 100 * time.Millisecond

// connState is what the server tracks of one open connection.
type connState struct {
	uid  uint32
	busy bool // a request is in flight
}

func (s *Server) maxConnsPerUID() int {
	if s.MaxConnsPerUID > 0 {
		return s.MaxConnsPerUID
	}
	return DefaultMaxConnsPerUID
}

func (s *Server) maxConns() int {
	if s.MaxConns > 0 {
		return s.MaxConns
	}
	return DefaultMaxConns
}

func (s *Server) idleTimeout() time.Duration { return orDefault(s.IdleTimeout, 30*time.Second) }

func (s *Server) firstRequestTimeout() time.Duration {
	return min(orDefault(s.FirstRequestTimeout, 5*time.Second), s.idleTimeout())
}

func connUID(peer Peer, peerErr error) uint32 {
	if peerErr != nil {
		return unknownUID
	}
	return peer.UID
}

// admit counts conn against the limits, or says why it cannot be taken.
func (s *Server) admit(conn net.Conn, peer Peer, peerErr error) (refusal string) {
	uid := connUID(peer, peerErr)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		s.conns = make(map[net.Conn]*connState)
		s.perUID = make(map[uint32]int)
	}
	if n := len(s.conns); n >= s.maxConns() {
		return fmt.Sprintf("the server holds %d connections, the most it takes; retry shortly", n)
	}
	if n := s.perUID[uid]; n >= s.maxConnsPerUID() {
		if peerErr != nil {
			return fmt.Sprintf("%d connections from unidentified peers are open, the most allowed", n)
		}
		return fmt.Sprintf("uid %d holds %d connections to this server, the most one uid may; close some and retry", uid, n)
	}
	s.conns[conn] = &connState{uid: uid}
	s.perUID[uid]++
	return ""
}

func (s *Server) untrack(conn net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.conns[conn]
	if !ok {
		return
	}
	delete(s.conns, conn)
	if s.perUID[st.uid]--; s.perUID[st.uid] <= 0 {
		delete(s.perUID, st.uid)
	}
}

func (s *Server) setBusy(conn net.Conn, busy bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.conns[conn]; ok {
		st.busy = busy
	}
}

// refuse answers a connection over the limits with unavailable and
// closes it, without reading from it: nothing it sends can hold the
// server. Its answer waits in the socket for the client's first read.
func (s *Server) refuse(ctx context.Context, conn net.Conn, peer Peer, peerErr error, msg string) {
	opID := opid.New()
	e := &ErrorResponse{Code: CodeUnavailable, Message: msg, OpID: opID}
	conn.SetWriteDeadline(time.Now().Add(refusalWriteTimeout))
	_ = writeFrame(conn, Response{Error: e, OpID: opID})
	conn.Close()

	uid := connUID(peer, peerErr)
	now := time.Now()
	s.mu.Lock()
	if s.refusalSeen == nil || len(s.refusalSeen) > 1024 {
		s.refusalSeen = make(map[uint32]time.Time) // forget old ones; at worst one more line each
	}
	last, seen := s.refusalSeen[uid]
	report := !seen || now.Sub(last) >= time.Second
	if report {
		s.refusalSeen[uid] = now
	}
	s.mu.Unlock()
	if report {
		s.observe(opid.With(ctx, opID), CallInfo{OpID: opID, Peer: peer, Err: e})
	}
}
