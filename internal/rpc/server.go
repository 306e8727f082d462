package rpc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	fastjson "github.com/segmentio/encoding/json"

	"banger/internal/buildinfo"
	"banger/internal/errdefs"
	"banger/internal/opid"
)

// Handler serves one method. params is the raw "params" value (nil when
// absent). The returned value is marshalled as the result; a returned
// error is mapped to a code once, by the server.
type Handler func(ctx context.Context, params json.RawMessage) (any, error)

// Typed adapts a function taking decoded parameters to a Handler.
// Parameters are decoded strictly: an unknown field is a bad_request
// naming it.
func Typed[P, R any](fn func(ctx context.Context, params P) (R, error)) Handler {
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		var p P
		if len(raw) > 0 && string(raw) != "null" {
			if err := decodeStrict(raw, &p); err != nil {
				return nil, fmt.Errorf("params: %s: %w", err.Error(), errdefs.ErrInvalidArgument)
			}
		}
		return fn(ctx, p)
	}
}

// NoParams is the parameter type of methods that take none; a request
// that sends fields anyway is refused.
type NoParams struct{}

// CallInfo describes one finished request, for the server's observer.
type CallInfo struct {
	Method   string
	OpID     string
	Peer     Peer
	Duration time.Duration
	Err      *ErrorResponse // nil on success
}

// Server dispatches requests from its method table. The zero value is
// not usable: set Methods at least.
type Server struct {
	// Methods is the dispatch table, method name → handler. It must not
	// change once Serve has been called.
	Methods map[string]Handler
	// Authorize decides, once per connection, whether the peer may call
	// anything. nil allows everyone. A refusal is answered with
	// unauthorized to the connection's first request, then it is closed.
	Authorize func(Peer) error
	// Observe, when set, is called after every request is answered.
	Observe func(ctx context.Context, info CallInfo)

	MaxRequestBytes int           // default DefaultMaxRequestBytes
	IdleTimeout     time.Duration // to receive a request; default 30s
	WriteTimeout    time.Duration // to send a response; default 10s
	HandlerTimeout  time.Duration // per request; default 10m
	ShutdownGrace   time.Duration // for in-flight requests; default 10s

	// Connection limits. A connection over either is answered at once
	// with unavailable, saying which, and closed; it is never queued, so
	// one uid's flood takes no more than its own share.
	MaxConnsPerUID int // open at once from one peer uid; default DefaultMaxConnsPerUID
	MaxConns       int // open at once in all; default DefaultMaxConns
	// FirstRequestTimeout is how long a new connection may take to send
	// its first request (a client sends it at once); default 5s, and
	// never more than IdleTimeout.
	FirstRequestTimeout time.Duration

	mu    sync.Mutex
	conns map[net.Conn]*connState
	// perUID counts open connections by peer uid.
	perUID map[uint32]int
	// refusalSeen: when a refusal for a uid was last observed, so a
	// flood of refused connections logs about once a second, not once
	// per connection.
	refusalSeen map[uint32]time.Time
}

func (s *Server) maxRequest() int {
	if s.MaxRequestBytes > 0 {
		return s.MaxRequestBytes
	}
	return DefaultMaxRequestBytes
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Serve accepts connections on ln until ctx is cancelled, then stops
// accepting, lets in-flight requests finish for ShutdownGrace, cancels
// what remains, and returns nil. ln is closed on return.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// Handlers run under their own context so a shutdown lets them
	// finish their response rather than cutting them off mid-way.
	handlerCtx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()

	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		s.mu.Lock()
		for c, st := range s.conns {
			if !st.busy {
				c.SetReadDeadline(time.Now()) // wake the idle reader
			}
		}
		s.mu.Unlock()
	})
	defer stop()

	var acceptErr error
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			acceptErr = err
			break
		}
		peer, peerErr := PeerCred(conn)
		if refusal := s.admit(conn, peer, peerErr); refusal != "" {
			s.refuse(handlerCtx, conn, peer, peerErr, refusal)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.untrack(conn)
			defer conn.Close()
			s.serveConn(ctx, handlerCtx, conn, peer, peerErr)
		}()
	}
	ln.Close()

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(orDefault(s.ShutdownGrace, 10*time.Second)):
		cancelHandlers()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		<-done
	}
	return acceptErr
}

// serveConn answers requests on one connection, one at a time, until the
// client hangs up, goes idle too long, sends an oversized frame, or the
// server shuts down.
func (s *Server) serveConn(serveCtx, handlerCtx context.Context, conn net.Conn, peer Peer, peerErr error) {
	var authErr error
	switch {
	case peerErr != nil:
		authErr = fmt.Errorf("cannot identify the peer: %w", peerErr)
	case s.Authorize != nil:
		authErr = s.Authorize(peer)
	}

	var fr *fileReader // files passed with requests, on unix sockets
	var src io.Reader = conn
	if uc, ok := conn.(*net.UnixConn); ok {
		fr = newFileReader(uc)
		src = fr
	}
	defer func() {
		files, _ := fr.take()
		closeFiles(files)
	}()
	r := bufio.NewReader(src) // frames longer than its buffer are accumulated by readFrame
	wait := s.firstRequestTimeout()
	for serveCtx.Err() == nil {
		conn.SetReadDeadline(time.Now().Add(wait))
		wait = s.idleTimeout()
		if serveCtx.Err() != nil {
			return // shutdown began after the loop check; its wake-up may be overwritten
		}
		frame, err := readFrame(r, s.maxRequest())
		if errors.Is(err, errFrameTooLarge) {
			resp := s.failFrame(handlerCtx, peer, CodeBadRequest,
				fmt.Sprintf("request exceeds %d bytes", s.maxRequest()))
			s.write(conn, resp)
			return
		}
		if err != nil {
			return // EOF, idle timeout, shutdown wake-up, reset
		}
		if authErr != nil {
			resp := s.failFrame(handlerCtx, peer, CodeUnauthorized, authErr.Error())
			s.write(conn, resp)
			return
		}
		files, truncated := fr.take()
		if truncated {
			closeFiles(files)
			resp := s.failFrame(handlerCtx, peer, CodeBadRequest,
				fmt.Sprintf("request carries more than %d files, or a malformed control message", MaxFiles))
			s.write(conn, resp)
			return
		}
		hctx := withPeer(handlerCtx, peer)
		if len(files) > 0 {
			hctx = withFiles(hctx, files)
		}
		s.setBusy(conn, true)
		resp := s.dispatch(hctx, frame)
		closeFiles(files)
		s.write(conn, resp)
		s.setBusy(conn, false)
	}
}

func (s *Server) write(conn net.Conn, resp Response) {
	conn.SetWriteDeadline(time.Now().Add(orDefault(s.WriteTimeout, 10*time.Second)))
	_ = writeFrame(conn, resp) // a client that went away gets nothing
	putBuf(resp.Result)
}

// failFrame answers a frame that is refused before it is decoded, under a
// freshly minted op id.
func (s *Server) failFrame(ctx context.Context, peer Peer, code Code, msg string) Response {
	opID := opid.New()
	e := &ErrorResponse{Code: code, Message: msg, OpID: opID}
	s.observe(opid.With(ctx, opID), CallInfo{OpID: opID, Peer: peer, Err: e})
	return Response{Error: e, OpID: opID}
}

// dispatch serves one decoded-or-not frame. It is the single place op ids
// are minted and stamped: every response it returns carries one.
func (s *Server) dispatch(ctx context.Context, frame []byte) Response {
	start := time.Now()
	peer, _ := PeerFromContext(ctx)
	req, decodeErr := decodeRequest(frame)
	opID := req.OpID
	if opID == "" {
		opID = opid.New()
	}
	ctx = opid.With(ctx, opID)

	fail := func(code Code, msg string) Response {
		e := &ErrorResponse{Code: code, Message: msg, OpID: opID}
		s.observe(ctx, CallInfo{Method: req.Method, OpID: opID, Peer: peer, Duration: time.Since(start), Err: e})
		return Response{Error: e, OpID: opID}
	}
	if decodeErr != nil {
		return fail(CodeBadRequest, decodeErr.Error())
	}
	if req.Version != buildinfo.ProtocolVersion {
		return fail(CodeBadVersion, fmt.Sprintf("unsupported protocol version %d (this server speaks %d)",
			req.Version, buildinfo.ProtocolVersion))
	}
	handler, ok := s.Methods[req.Method]
	if !ok {
		return fail(CodeUnknownMethod, fmt.Sprintf("unknown method %q", req.Method))
	}

	hctx, cancel := context.WithTimeout(ctx, orDefault(s.HandlerTimeout, 10*time.Minute))
	defer cancel()
	result, err := callHandler(hctx, handler, req.Params)
	var raw json.RawMessage
	if err == nil {
		// Returned to the pool once written, in write.
		raw, err = fastjson.Append(getBuf(), result, fastFlags)
		if err != nil {
			putBuf(raw)
			raw = nil
			err = fmt.Errorf("encode result of %s: %w", req.Method, err)
		}
	}
	if err != nil {
		e := toErrorResponse(err, opID)
		s.observe(ctx, CallInfo{Method: req.Method, OpID: opID, Peer: peer, Duration: time.Since(start), Err: e})
		return Response{Error: e, OpID: opID}
	}
	s.observe(ctx, CallInfo{Method: req.Method, OpID: opID, Peer: peer, Duration: time.Since(start)})
	return Response{Result: raw, OpID: opID}
}

// callHandler turns a handler panic into an internal error, so one bad
// request cannot take the daemon down with every VM's bookkeeping.
func callHandler(ctx context.Context, h Handler, params json.RawMessage) (result any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panic: %v", p)
		}
	}()
	return h(ctx, params)
}

func (s *Server) observe(ctx context.Context, info CallInfo) {
	if s.Observe != nil {
		s.Observe(ctx, info)
	}
}
