package guest

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// The files setup writes, relative to the system's root.
const (
	resolvConfPath = "/etc/resolv.conf"
	hostnamePath   = "/etc/hostname"
	hostsPath      = "/etc/hosts"
)

// renderResolvConf is /etc/resolv.conf naming the one DNS server banger
// passed.
func renderResolvConf(dns netip.Addr) []byte {
	return []byte("# Written by banger-guest from the kernel command line.\nnameserver " + dns.String() + "\n")
}

// defaultHosts is Debian's /etc/hosts, for an image that has none.
const defaultHosts = "127.0.0.1\tlocalhost\n" +
	"::1\t\tlocalhost ip6-localhost ip6-loopback\n" +
	"ff02::1\t\tip6-allnodes\n" +
	"ff02::2\t\tip6-allrouters\n"

// renderHosts returns old with its 127.0.1.1 line (Debian's place for the
// machine's own name) replaced by one for name, placed after the last
// 127.0.0.1 line, or first when there is none. Every other line is kept
// as it was.
func renderHosts(old []byte, name string) []byte {
	text := string(old)
	if strings.TrimSpace(text) == "" {
		text = defaultHosts
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	own := "127.0.1.1\t" + name
	out := make([]string, 0, len(lines)+1)
	at := 0
	for _, line := range lines {
		fields := strings.Fields(line)
		if len(fields) > 0 && fields[0] == "127.0.1.1" {
			continue
		}
		out = append(out, line)
		if len(fields) > 0 && fields[0] == "127.0.0.1" {
			at = len(out)
		}
	}
	out = append(out[:at], append([]string{own}, out[at:]...)...)
	return []byte(strings.Join(out, "\n") + "\n")
}

// writeNameFiles writes /etc/hostname and /etc/hosts under root for the
// hostname name, and /etc/resolv.conf when dns is set. With no DNS server
// the image's resolv.conf is left alone.
func writeNameFiles(root, name string, dns netip.Addr) error {
	if dns.IsValid() {
		if err := writeFileIfChanged(filepath.Join(root, resolvConfPath), renderResolvConf(dns), 0o644); err != nil {
			return err
		}
	}
	if err := writeFileIfChanged(filepath.Join(root, hostnamePath), []byte(name+"\n"), 0o644); err != nil {
		return err
	}
	hosts := filepath.Join(root, hostsPath)
	old, err := os.ReadFile(hosts)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", hosts, err)
	}
	return writeFileIfChanged(hosts, renderHosts(old, name), 0o644)
}

// writeFileIfChanged makes path a regular file holding data with mode
// perm. An identical file is left alone (setup runs on every boot and
// should not dirty the disk); otherwise the file is replaced by a rename,
// which also replaces a symlink (resolv.conf pointing into systemd-resolved
// or a dangling /run path) rather than writing through it. The file is not
// fsynced: setup writes it again on the next boot.
func writeFileIfChanged(path string, data []byte, perm os.FileMode) error {
	if fi, err := os.Lstat(path); err == nil && fi.Mode().IsRegular() {
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
			if fi.Mode().Perm() != perm {
				if err := os.Chmod(path, perm); err != nil {
					return fmt.Errorf("chmod %s: %w", path, err)
				}
			}
			return nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".banger-tmp"
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, perm) // the umask may have narrowed it
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
