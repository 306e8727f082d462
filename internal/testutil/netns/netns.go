// Package netns gives tests their own network namespaces, so that every
// bridge, tap, route and rule they create lives there and no traffic
// reaches the host's network. Each namespace is deleted, and every
// process left in it killed, when the test ends.
package netns

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
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

// New creates a namespace with loopback up.
func New(t testing.TB) *NS {
	t.Helper()
	Require(t)
	b := make([]byte, 4)
	rand.Read(b)
	ns := &NS{Name: "bgt-" + hex.EncodeToString(b)}
	run(t, "ip", "netns", "add", ns.Name)
	t.Cleanup(func() { ns.destroy(t) })
	ns.Run(t, "ip", "link", "set", "lo", "up")
	return ns
}

func (ns *NS) destroy(t testing.TB) {
	out, _ := exec.Command("ip", "netns", "pids", ns.Name).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	// A killed process can hold the namespace briefly; retry the delete.
	for i := 0; i < 50; i++ {
		if exec.Command("ip", "netns", "del", ns.Name).Run() == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("could not delete network namespace %s", ns.Name)
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
