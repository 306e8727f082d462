package vms

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"banger/internal/vmm"
)

const fakeDriverName = "fake"

// fakeDriver is a VMM driver whose "VMM" is a sleep process: real
// enough for vmm.Alive, vmm.Wait (pidfd) and start-time checks, which
// the service uses directly, and nothing more. Stop ends it as a guest
// that powers off would; exit ends it behind banger's back.
type fakeDriver struct {
	problems
	mu    sync.Mutex
	procs map[int]chan struct{} // pid → closed once reaped
	specs []vmm.Spec
	stops int
	kills int

	startErr error
	// ignoreStop makes Stop wait for its deadline, as a guest that
	// ignores the power button.
	ignoreStop bool
	// lifetime is how long a VMM runs before it exits on its own
	// (sleep's argument; "" is 600 s).
	lifetime string
}

// newFakeDriver returns a driver whose processes are killed when the
// test ends.
func newFakeDriver(t *testing.T) *fakeDriver {
	d := &fakeDriver{procs: map[int]chan struct{}{}}
	d.report(t)
	t.Cleanup(func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		for pid, done := range d.procs {
			select {
			case <-done:
			default:
				syscall.Kill(pid, syscall.SIGKILL)
				<-done
			}
		}
	})
	return d
}

func (d *fakeDriver) Name() string { return fakeDriverName }

func (d *fakeDriver) Start(_ context.Context, spec vmm.Spec) (vmm.Handle, error) {
	d.mu.Lock()
	d.specs = append(d.specs, spec)
	err := d.startErr
	d.mu.Unlock()
	if verr := spec.Validate(); verr != nil {
		d.add("Start got a bad spec: %v", verr)
		return vmm.Handle{}, verr
	}
	if err != nil {
		return vmm.Handle{}, err
	}
	d.mu.Lock()
	lifetime := d.lifetime
	d.mu.Unlock()
	return d.spawn(spec.ControlSocket, lifetime)
}

// spawn starts a process standing in for a VMM and returns its handle.
func (d *fakeDriver) spawn(control, lifetime string) (vmm.Handle, error) {
	if lifetime == "" {
		lifetime = "600"
	}
	return d.spawnAt("sleep", control, lifetime)
}

// spawnAt is spawn running sleep as program (a path, or a name looked
// up on PATH).
func (d *fakeDriver) spawnAt(program, control, lifetime string) (vmm.Handle, error) {
	cmd := exec.Command(program, lifetime)
	if err := cmd.Start(); err != nil {
		return vmm.Handle{}, err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	d.mu.Lock()
	d.procs[cmd.Process.Pid] = done
	d.mu.Unlock()
	h, err := vmm.HandleFor(fakeDriverName, cmd.Process.Pid, control)
	if err != nil {
		d.end(cmd.Process.Pid)
	}
	return h, err
}

// end kills pid and waits until it is reaped.
func (d *fakeDriver) end(pid int) {
	d.mu.Lock()
	done, ok := d.procs[pid]
	d.mu.Unlock()
	if !ok {
		return
	}
	select {
	case <-done: // reaped: the pid may be another process's now
		return
	default:
	}
	syscall.Kill(pid, syscall.SIGKILL)
	<-done
}

func (d *fakeDriver) Stop(ctx context.Context, h vmm.Handle) error {
	d.mu.Lock()
	d.stops++
	ignore := d.ignoreStop
	d.mu.Unlock()
	d.check(h)
	if ignore {
		<-ctx.Done()
		return ctx.Err()
	}
	d.end(h.PID)
	return nil
}

func (d *fakeDriver) Kill(h vmm.Handle) error {
	d.mu.Lock()
	d.kills++
	d.mu.Unlock()
	d.check(h)
	if vmm.Alive(h) {
		d.end(h.PID)
	}
	return nil
}

func (d *fakeDriver) Describe(_ context.Context, h vmm.Handle) (vmm.Description, error) {
	if !vmm.Alive(h) {
		return vmm.Description{}, vmm.ErrExited
	}
	return vmm.Description{Driver: fakeDriverName, State: vmm.StateRunning, PID: h.PID}, nil
}

func (d *fakeDriver) check(h vmm.Handle) {
	if err := h.Check(fakeDriverName, "control socket"); err != nil {
		d.add("bad handle: %v", err)
	}
}

// live is how many of its processes still run.
func (d *fakeDriver) live() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, done := range d.procs {
		select {
		case <-done:
		default:
			n++
		}
	}
	return n
}

func (d *fakeDriver) counts() (starts, stops, kills int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.specs), d.stops, d.kills
}

func (d *fakeDriver) set(fn func(d *fakeDriver)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fn(d)
}

// fakeGuest is a guest's SSH server on 127.0.0.1. It presents the host
// key hostKey returns at each connection (a connection is dropped while
// there is none yet, as a guest still booting would) and lets in the
// key authorized returns.
type fakeGuest struct {
	ln         net.Listener
	hostKey    func() (ssh.Signer, error)
	authorized func() ssh.PublicKey

	mu     sync.Mutex
	logins int
}

func startGuest(t *testing.T, hostKey func() (ssh.Signer, error), authorized func() ssh.PublicKey) *fakeGuest {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &fakeGuest{ln: ln, hostKey: hostKey, authorized: authorized}
	var wg sync.WaitGroup
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); g.serve(conn) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return g
}

func (g *fakeGuest) port() string {
	_, port, _ := net.SplitHostPort(g.ln.Addr().String())
	return port
}

func (g *fakeGuest) serve(conn net.Conn) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	signer, err := g.hostKey()
	if err != nil {
		return
	}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
		if want := g.authorized(); want != nil && bytes.Equal(key.Marshal(), want.Marshal()) {
			// Counted before the client hears it is in.
			g.mu.Lock()
			g.logins++
			g.mu.Unlock()
			return &ssh.Permissions{}, nil
		}
		return nil, errors.New("not authorized")
	}}
	cfg.AddHostKey(signer)
	sc, chans, reqs, err := ssh.NewServerConn(conn, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for ch := range chans {
		ch.Reject(ssh.Prohibited, "fake guest")
	}
	sc.Close()
}

func (g *fakeGuest) loginCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.logins
}
