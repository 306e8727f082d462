package guest

import (
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestRenderHosts(t *testing.T) {
	tests := []struct {
		name, old, want string
	}{
		{"none", "", "127.0.0.1\tlocalhost\n127.0.1.1\tvm1\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n"},
		{"debian's", "127.0.0.1\tlocalhost\n127.0.1.1\tdebian\n\n::1 localhost\n",
			"127.0.0.1\tlocalhost\n127.0.1.1\tvm1\n\n::1 localhost\n"},
		{"already right", "127.0.0.1\tlocalhost\n127.0.1.1\tvm1\n", "127.0.0.1\tlocalhost\n127.0.1.1\tvm1\n"},
		{"several stale lines", "127.0.1.1 a\n127.0.0.1 localhost\n127.0.1.1 b\n", "127.0.0.1 localhost\n127.0.1.1\tvm1\n"},
		{"no localhost line", "10.0.0.1 gw\n", "127.0.1.1\tvm1\n10.0.0.1 gw\n"},
		{"no trailing newline", "127.0.0.1 localhost", "127.0.0.1 localhost\n127.0.1.1\tvm1\n"},
		{"comments kept", "# static\n127.0.0.1 localhost\n# 127.0.1.1 old\n", "# static\n127.0.0.1 localhost\n127.0.1.1\tvm1\n# 127.0.1.1 old\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(renderHosts([]byte(tt.old), "vm1"))
			if got != tt.want {
				t.Errorf("renderHosts:\n got %q\nwant %q", got, tt.want)
			}
			if again := string(renderHosts([]byte(got), "vm1")); again != got {
				t.Errorf("not a fixed point:\n got %q\nthen %q", got, again)
			}
		})
	}
}

func TestRenderResolvConf(t *testing.T) {
	got := string(renderResolvConf(netip.MustParseAddr("172.16.0.1")))
	want := "# Written by banger-guest from the kernel command line.\nnameserver 172.16.0.1\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWriteNameFiles(t *testing.T) {
	root := t.TempDir()
	etc := filepath.Join(root, "etc")
	os.MkdirAll(etc, 0o755)
	os.WriteFile(filepath.Join(etc, "hosts"), []byte("127.0.0.1\tlocalhost\n127.0.1.1\tdebian\n"), 0o644)
	// resolv.conf as systemd-resolved leaves it: a symlink into /run,
	// which is not there. It must be replaced, not written through.
	if err := os.Symlink("../run/systemd/resolve/stub-resolv.conf", filepath.Join(etc, "resolv.conf")); err != nil {
		t.Fatal(err)
	}
	dns := netip.MustParseAddr("172.16.0.1")
	if err := writeNameFiles(root, "vm1", dns); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(filepath.Join(etc, "resolv.conf"))
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 {
		t.Fatalf("resolv.conf: %v, %v; want a regular 0644 file", fi.Mode(), err)
	}
	if got := readFile(t, filepath.Join(etc, "resolv.conf")); got != string(renderResolvConf(dns)) {
		t.Errorf("resolv.conf = %q", got)
	}
	if _, err := os.Stat(filepath.Join(root, "run")); err == nil {
		t.Error("wrote through the resolv.conf symlink")
	}
	if got := readFile(t, filepath.Join(etc, "hostname")); got != "vm1\n" {
		t.Errorf("hostname = %q", got)
	}
	if got := readFile(t, filepath.Join(etc, "hosts")); got != "127.0.0.1\tlocalhost\n127.0.1.1\tvm1\n" {
		t.Errorf("hosts = %q", got)
	}

	// A second run (a restart of the unit, a reboot) rewrites nothing.
	before := modTimes(t, etc)
	time.Sleep(10 * time.Millisecond)
	if err := writeNameFiles(root, "vm1", dns); err != nil {
		t.Fatal(err)
	}
	if after := modTimes(t, etc); !maps.Equal(before, after) {
		t.Errorf("second run changed files: %v -> %v", before, after)
	}
}

func TestWriteNameFilesWithoutDNS(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	image := "nameserver 192.0.2.53\n"
	os.WriteFile(filepath.Join(root, "etc", "resolv.conf"), []byte(image), 0o644)
	if err := writeNameFiles(root, "vm1", netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(root, "etc", "resolv.conf")); got != image {
		t.Errorf("resolv.conf changed without a DNS server: %q", got)
	}
	// No /etc/hosts in the image: Debian's default plus our line.
	if got := readFile(t, filepath.Join(root, "etc", "hosts")); got != string(renderHosts(nil, "vm1")) {
		t.Errorf("hosts = %q", got)
	}
}

func TestWriteFileIfChangedFixesMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "key")
	os.WriteFile(p, []byte("secret"), 0o644)
	if err := writeFileIfChanged(p, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if entries, _ := os.ReadDir(filepath.Dir(p)); len(entries) != 1 {
		t.Errorf("left a temporary file: %v", entries)
	}
}

// modTimes maps each file in dir to its modification time and inode
// number, which a rename would change.
func modTimes(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = fmt.Sprintf("%v %v ino %d", fi.ModTime(), fi.Mode(), fi.Sys().(*syscall.Stat_t).Ino)
	}
	return m
}
