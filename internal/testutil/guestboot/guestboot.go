// Package guestboot boots a banger image the plain way, for tests and as
// the baseline benchmarks hold banger against: qemu-system-x86_64 -M
// microvm on a tap in a network namespace the test made, with a work
// disk made by mkfs.ext4 -d that carries the test's SSH keys, and an SSH
// login that pins the guest's host key.
package guestboot

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"banger/internal/disk"
	"banger/internal/guestapi"
	"banger/internal/sshkey"
	"banger/internal/testutil/netns"
	"banger/internal/testutil/testimage"
)

// Require skips unless QEMU is installed.
func Require(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("needs qemu-system-x86_64")
	}
}

// Network is a bridge in a namespace that guests attach to.
type Network struct {
	NS     *netns.NS
	Bridge string
	Prefix netip.Prefix // the bridge's address, 172.16.0.1/24
	next   int
}

// NewNetwork makes a namespace with a bridge br0 at 172.16.0.1/24.
func NewNetwork(t testing.TB) *Network {
	ns := netns.New(t)
	n := &Network{NS: ns, Bridge: "br0", Prefix: netip.MustParsePrefix("172.16.0.1/24"), next: 2}
	ns.Run(t, "ip", "link", "add", n.Bridge, "type", "bridge")
	ns.Run(t, "ip", "addr", "add", n.Prefix.String(), "dev", n.Bridge)
	ns.Run(t, "ip", "link", "set", n.Bridge, "up")
	return n
}

// Guest is a running VM.
type Guest struct {
	Name       string
	Addr       netip.Addr
	Console    string // console log path
	Cmd        *exec.Cmd
	ClientKey  sshkey.Key
	HostKey    sshkey.Key
	exited     chan struct{}
	network    *Network
	BootedAt   time.Time
	SSHReadyAt time.Time
}

// Options shape a boot.
type Options struct {
	MemoryMiB int    // default 512
	VCPUs     int    // default 1
	WorkDisk  string // work disk size, default 256M
}

// Boot starts the image under QEMU on a new tap on the network's bridge.
// The root disk is used read-only (snapshot=on: writes go to a temp
// file), so the cached image is never changed.
func Boot(t testing.TB, n *Network, img testimage.Image, name string, opt Options) *Guest {
	t.Helper()
	Require(t)
	if opt.MemoryMiB == 0 {
		opt.MemoryMiB = 512
	}
	if opt.VCPUs == 0 {
		opt.VCPUs = 1
	}
	dir := t.TempDir()
	g := &Guest{Name: name, network: n, exited: make(chan struct{})}
	g.Addr = addrN(n.Prefix, n.next)
	n.next++
	tap := fmt.Sprintf("tap%d", n.next)
	n.NS.Run(t, "ip", "tuntap", "add", tap, "mode", "tap")
	n.NS.Run(t, "ip", "link", "set", tap, "master", n.Bridge)
	n.NS.Run(t, "ip", "link", "set", tap, "up")

	var err error
	if g.ClientKey, err = sshkey.Generate("test"); err != nil {
		t.Fatal(err)
	}
	if g.HostKey, err = sshkey.Generate("host"); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(dir, "work.ext4")
	if opt.WorkDisk == "" {
		opt.WorkDisk = "256M"
	}
	if err := MakeWorkDisk(img.WorkSeed, work, opt.WorkDisk, g.ClientKey, g.HostKey); err != nil {
		t.Fatal(err)
	}
	cfg := guestapi.Config{Address: netip.PrefixFrom(g.Addr, n.Prefix.Bits()), Gateway: n.Prefix.Addr(), Hostname: name}
	banger, err := cfg.Cmdline()
	if err != nil {
		t.Fatal(err)
	}
	cmdline := "console=ttyS0 reboot=k panic=1 root=/dev/vda rw " + TCGCmdline() + " " + banger
	g.Console = filepath.Join(dir, "console.log")
	args := []string{
		"-M", "microvm", "-accel", "tcg", "-cpu", "max",
		"-m", strconv.Itoa(opt.MemoryMiB), "-smp", strconv.Itoa(opt.VCPUs),
		"-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
		"-serial", "file:" + g.Console,
		"-kernel", img.Kernel, "-append", cmdline,
		"-drive", "id=root,file=" + img.Rootfs + ",format=raw,if=none,snapshot=on",
		"-device", "virtio-blk-device,drive=root",
		"-drive", "id=work,file=" + work + ",format=raw,if=none",
		"-device", "virtio-blk-device,drive=work",
		"-netdev", "tap,id=net0,ifname=" + tap + ",script=no,downscript=no",
		"-device", "virtio-net-device,netdev=net0,mac=" + MAC(g.Addr),
	}
	if img.Initrd != "" {
		args = append(args, "-initrd", img.Initrd)
	}
	g.Cmd = n.NS.Cmd("qemu-system-x86_64", args...)
	var stderr bytes.Buffer
	g.Cmd.Stderr = &stderr
	if err := g.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g.BootedAt = time.Now()
	go func() { g.Cmd.Wait(); close(g.exited) }()
	t.Cleanup(func() {
		g.Cmd.Process.Kill()
		<-g.exited
		if t.Failed() {
			t.Logf("qemu stderr:\n%s\nconsole of %s (last lines):\n%s", stderr.String(), name, tail(g.Console, 40))
		}
	})
	return g
}

// MakeWorkDisk builds a work disk the way banger does, as an ext4 made
// by mkfs.ext4 -d from a staging tree: the image's work seed, the client
// key in /root/.ssh/authorized_keys, the host key for the guest to use.
func MakeWorkDisk(seed, path, size string, client, host sshkey.Key) error {
	stage, err := os.MkdirTemp("", "workstage")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	if seed != "" {
		if out, err := exec.Command("cp", "-a", seed+"/.", stage).CombinedOutput(); err != nil {
			return fmt.Errorf("copy work seed: %v: %s", err, out)
		}
	}
	files := map[string]struct {
		data []byte
		mode os.FileMode
	}{
		strings.TrimPrefix(guestapi.AuthorizedKeysPath, "/root/"):   {client.AuthorizedKey("banger"), 0o600},
		strings.TrimPrefix(guestapi.HostKeyPath, "/root/"):          {host.PrivatePEM, 0o600},
		strings.TrimPrefix(guestapi.HostKeyPath, "/root/") + ".pub": {host.AuthorizedKey(""), 0o644},
	}
	for rel, f := range files {
		p := filepath.Join(stage, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			return err
		}
	}
	argv := append(append([]string{"-q", "-F", "-L", "banger-work"}, disk.MkfsLazyInit...), "-d", stage, path, size)
	if out, err := exec.Command("mkfs.ext4", argv...).CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.ext4 work disk: %v: %s", err, out)
	}
	return nil
}

// WaitSSH logs in as root with the client key, accepting only the host
// key the guest was given, retrying until ctx ends or QEMU exits.
func (g *Guest) WaitSSH(ctx context.Context) (*ssh.Client, error) {
	c, err := WaitSSH(ctx, g.network.NS, g.Addr, g.ClientKey.Signer, g.HostKey.Public(), g.exited)
	if err == nil {
		g.SSHReadyAt = time.Now()
	}
	return c, err
}

// WaitSSH logs in to addr:22 from inside ns as root with client,
// accepting only hostKey, retrying every 250 ms until ctx ends or gone
// (which may be nil) is closed.
func WaitSSH(ctx context.Context, ns *netns.NS, addr netip.Addr, client ssh.Signer, hostKey ssh.PublicKey, gone <-chan struct{}) (*ssh.Client, error) {
	cfg := &ssh.ClientConfig{
		User:            "root",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(client)},
		HostKeyCallback: ssh.FixedHostKey(hostKey),
		Timeout:         5 * time.Second,
	}
	target := netip.AddrPortFrom(addr, 22).String()
	var last error
	for {
		select {
		case <-gone:
			return nil, fmt.Errorf("the VMM exited before SSH answered (last error: %v)", last)
		default:
		}
		dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		conn, err := ns.Dial(dctx, "tcp", target)
		cancel()
		if err == nil {
			c, chans, reqs, err := ssh.NewClientConn(conn, target, cfg)
			if err == nil {
				return ssh.NewClient(c, chans, reqs), nil
			}
			conn.Close()
			last = err
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no SSH login to %s: %w (last error: %v)", target, ctx.Err(), last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Run runs a command over SSH and returns its combined output.
func Run(c *ssh.Client, cmd string) (string, error) {
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	out, err := s.CombinedOutput(cmd)
	return string(out), err
}

// Wait waits for QEMU to exit (after the guest powers off).
func (g *Guest) Wait(timeout time.Duration) error {
	select {
	case <-g.exited:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("qemu still running after %s", timeout)
	}
}

// TCGCmdline is what a guest needs under TCG on microvm: without a known
// TSC frequency it can hang calibrating its clock on a busy host.
func TCGCmdline() string {
	if khz := HostTSCkHz(); khz > 0 {
		return fmt.Sprintf("tsc_early_khz=%d tsc=reliable", khz)
	}
	return "tsc=reliable"
}

// HostTSCkHz reads the host CPU's frequency from /proc/cpuinfo.
func HostTSCkHz() int {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "cpu MHz" {
			mhz, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return int(mhz * 1000)
			}
		}
	}
	return 0
}

// MAC derives a locally administered MAC from an IPv4 address.
func MAC(a netip.Addr) string {
	b := a.As4()
	return fmt.Sprintf("52:54:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
}

func addrN(p netip.Prefix, n int) netip.Addr {
	a := p.Masked().Addr().As4()
	a[3] += byte(n)
	return netip.AddrFrom4(a)
}

func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(string(data), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// NewTap takes the network's next guest address and makes a tap for it,
// as Boot does: in the namespace, attached to the bridge, up. It is for
// tests that start the VMM themselves.
func (n *Network) NewTap(t testing.TB) (netip.Addr, string) {
	t.Helper()
	addr := addrN(n.Prefix, n.next)
	n.next++
	tap := fmt.Sprintf("tap%d", n.next)
	n.NS.Run(t, "ip", "tuntap", "add", tap, "mode", "tap")
	n.NS.Run(t, "ip", "link", "set", tap, "master", n.Bridge)
	n.NS.Run(t, "ip", "link", "set", tap, "up")
	return addr, tap
}
