// Package e2e boots real guests: images built from Debian's packages by
// banger's own builder, under QEMU (TCG here), in network namespaces the
// tests make. Nothing they do reaches the host's network.
package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"banger/internal/sshkey"
	"banger/internal/testutil/guestboot"
	"banger/internal/testutil/testimage"
)

// TestImageBootsUnderPlainQEMU: the image banger builds boots under plain
// qemu-system-x86_64 -M microvm with TCG, its guest program configures
// the address the kernel command line carries, mounts the work disk on
// /root, installs the host key banger gave it, and lets us log in with
// SSH using the key on the work disk — before any lifecycle code exists.
func TestImageBootsUnderPlainQEMU(t *testing.T) {
	img := testimage.Get(t)
	guestboot.Require(t)
	n := guestboot.NewNetwork(t)
	g := guestboot.Boot(t, n, img, "imgtest", guestboot.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	c, err := g.WaitSSH(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Logf("boot to SSH: %s", g.SSHReadyAt.Sub(g.BootedAt).Round(time.Millisecond))

	checks := []struct{ cmd, want string }{
		{"uname -r", strings.Fields(img.Build.KernelVersion)[0]},
		{"hostname", "imgtest"},
		{"ip -4 -o addr show eth0", "inet 172.16.0.2/24"},
		{"ip route show default", "default via 172.16.0.1 dev eth0"},
		{"findmnt -n -o SOURCE,FSTYPE /root", "/dev/vdb ext4"},
		{"findmnt -n -o SOURCE /", "/dev/vda"},
		{"stat -c '%U %a' /root /root/.ssh /root/.ssh/authorized_keys", "root 700\nroot 700\nroot 600"},
		{"grep PRETTY_NAME /etc/os-release", "Debian GNU/Linux 12"},
		{"ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub | awk '{print $2}'", g.HostKey.Fingerprint()},
		{"ls /etc/ssh/ | grep -c '^ssh_host_.*_key$'", "1"},
		{"systemctl is-active banger-guest.service ssh.service", "active\nactive"},
		{"test -s /root/.bashrc && echo seeded", "seeded"},
		{"cat /proc/cmdline", "banger.hostname=imgtest"},
	}
	for _, c2 := range checks {
		out, err := guestboot.Run(c, c2.cmd)
		if err != nil || !strings.Contains(strings.TrimSpace(out), c2.want) {
			t.Errorf("%s: got %q (%v), want %q", c2.cmd, out, err, c2.want)
		}
	}
	if out, _ := guestboot.Run(c, "systemd-analyze 2>/dev/null; systemctl --failed --no-legend"); out != "" {
		t.Logf("guest boot:\n%s", out)
	}

	// The host key is pinned: a client expecting another key is refused.
	other, _ := sshkey.Generate("")
	conn, err := n.NS.Dial(ctx, "tcp", g.Addr.String()+":22")
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, err = ssh.NewClientConn(conn, g.Addr.String()+":22", &ssh.ClientConfig{
		User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(g.ClientKey.Signer)},
		HostKeyCallback: ssh.FixedHostKey(other.Public()),
	})
	if err == nil || !strings.Contains(err.Error(), "host key mismatch") {
		t.Errorf("login expecting another host key: %v", err)
	}

	// Powering off ends QEMU, as a VMM sees a guest stop.
	guestboot.Run(c, "systemctl poweroff")
	if err := g.Wait(60 * time.Second); err != nil {
		t.Error(err)
	}
}
