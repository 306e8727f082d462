package fcdouble

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// vsockProxy is Firecracker's host side of vsock: a unix socket at
// uds_path where a host process writes "CONNECT <port>\n", is answered
// "OK <host_port>\n" and then talks to the guest's AF_VSOCK port. The
// double reaches the guest through the host's vhost-vsock (QEMU's
// vhost-vsock-device at the same CID); on a host without it, or before
// the guest runs, a connection is closed, as Firecracker closes one the
// guest does not accept.
type vsockProxy struct {
	l     net.Listener
	path  string
	cid   uint32
	log   *fileLogger
	mu    sync.Mutex
	ready bool
	next  uint32
}

func listenVsock(path string, cid uint32, log *fileLogger) (*vsockProxy, error) {
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	p := &vsockProxy{l: l, path: path, cid: cid, log: log, next: 1 << 30}
	go p.serve()
	return p, nil
}

func (p *vsockProxy) setReady() {
	p.mu.Lock()
	p.ready = true
	p.mu.Unlock()
}

func (p *vsockProxy) Close() {
	p.l.Close()
	os.Remove(p.path)
}

func (p *vsockProxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *vsockProxy) handle(c net.Conn) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		return
	}
	port, ok := parseConnect(line)
	p.mu.Lock()
	ready := p.ready
	p.next++
	hostPort := p.next
	p.mu.Unlock()
	if !ok || !ready {
		return
	}
	g, err := dialVsock(p.cid, port)
	if err != nil {
		p.log.log(levelDebug, fmt.Sprintf("vsock: connect to guest port %d: %v", port, err))
		return
	}
	defer g.Close()
	c.SetReadDeadline(time.Time{})
	fmt.Fprintf(c, "OK %d\n", hostPort)
	go func() {
		io.Copy(g, br)
		if cw, ok := g.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}()
	io.Copy(c, g)
}

func parseConnect(line string) (uint32, bool) {
	rest, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "CONNECT ")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(rest, 10, 32)
	return uint32(n), err == nil
}

// dialVsock connects to port on the guest with context id cid.
func dialVsock(cid, port uint32) (io.ReadWriteCloser, error) {
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Connect(fd, &unix.SockaddrVM{CID: cid, Port: port}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), "vsock"), nil
}
