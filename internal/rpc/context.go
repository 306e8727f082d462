package rpc

import (
	"context"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

type peerKey struct{}

// Peer is the identity of the process at the other end of a unix socket,
// as the kernel reports it (SO_PEERCRED). It cannot be forged by the
// client, so it is the only identity the servers trust.
type Peer struct {
	UID uint32
	GID uint32
	PID int32
}

// PeerFromContext returns the connection's peer credentials, set by the
// server for every request.
func PeerFromContext(ctx context.Context) (Peer, bool) {
	p, ok := ctx.Value(peerKey{}).(Peer)
	return p, ok
}

func withPeer(ctx context.Context, p Peer) context.Context {
	return context.WithValue(ctx, peerKey{}, p)
}

// PeerCred reads SO_PEERCRED from a unix socket connection.
func PeerCred(conn net.Conn) (Peer, error) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return Peer{}, fmt.Errorf("peer credentials: %T is not a unix socket", conn)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	if credErr != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", credErr)
	}
	return Peer{UID: cred.Uid, GID: cred.Gid, PID: cred.Pid}, nil
}
