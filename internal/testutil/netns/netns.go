// Package netns gives tests their own network namespaces, so that every
// bridge, tap, route and rule they create lives there and no traffic
// reaches the host's network. Each namespace is deleted, and every
// process left in it killed, when the test ends.
package netns

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	vnetns "github.com/vishvananda/netns"
)

// Require skips the test unless it runs as root with iproute2.
func Require(t testing.TB) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2 (ip)")
	}
}

// NS is a named network namespace.
type NS struct {
	Name string
}

// New creates a namespace with loopback up, destroyed when the test ends.
func New(t testing.TB) *NS {
	t.Helper()
	Require(t)
	ns, err := Create()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ns.Destroy(); err != nil {
			t.Error(err)
		}
	})
	return ns
}

// Create makes a uniquely named namespace with loopback up. The caller
// must Destroy it.
func Create() (*NS, error) {
	b := make([]byte, 4)
	rand.Read(b)
	ns := &NS{Name: "bgt-" + hex.EncodeToString(b)}
	if out, err := exec.Command("ip", "netns", "add", ns.Name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %v: %s", ns.Name, err, out)
	}
	if out, err := ns.Cmd("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		ns.Destroy()
		return nil, fmt.Errorf("in %s: ip link set lo up: %v: %s", ns.Name, err, out)
	}
	return ns, nil
}

// Destroy kills every process left in the namespace and deletes it.
func (ns *NS) Destroy() error {
	out, _ := exec.Command("ip", "netns", "pids", ns.Name).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	// A killed process can hold the namespace briefly; retry the delete.
	for i := 0; i < 50; i++ {
		if exec.Command("ip", "netns", "del", ns.Name).Run() == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("could not delete network namespace %s", ns.Name)
}

// Cmd returns a command that runs inside the namespace.
func (ns *NS) Cmd(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// Run runs a command inside the namespace and returns its output, failing
// the test if it fails.
func (ns *NS) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := ns.Cmd(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("in %s: %s %s: %v\n%s", ns.Name, name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Veth connects two namespaces with a veth pair: nameA in a, nameB in b,
// both up. Addresses and routes are the caller's.
func Veth(t testing.TB, a *NS, nameA string, b *NS, nameB string) {
	t.Helper()
	run(t, "ip", "link", "add", nameA, "netns", a.Name, "type", "veth", "peer", "name", nameB, "netns", b.Name)
	a.Run(t, "ip", "link", "set", nameA, "up")
	b.Run(t, "ip", "link", "set", nameB, "up")
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// Dial connects to addr from inside the namespace. The socket is made on
// an OS thread switched into ns; once made, it stays there whatever
// thread later reads it.
func (ns *NS) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := ns.Do(func() error {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}

// Do runs fn on an OS thread switched into the namespace: sockets, taps
// and netlink handles fn creates belong to ns.
func (ns *NS) Do(fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := vnetns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	target, err := vnetns.GetFromName(ns.Name)
	if err != nil {
		return err
	}
	defer target.Close()
	if err := vnetns.Set(target); err != nil {
		return err
	}
	defer func() {
		if err := vnetns.Set(orig); err != nil {
			// The thread is in the wrong namespace; never reuse it.
			panic(fmt.Sprintf("cannot return to the original network namespace: %v", err))
		}
	}()
	return fn()
}
