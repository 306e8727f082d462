package vms

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"

	"banger/internal/sshkey"
)

// knownHosts is banger's own known_hosts file. Each VM's host key is
// pinned under the alias "banger-<vm id>", not under its address: an
// address comes free when a VM is removed and may go to another VM,
// whose key is different.
type knownHosts struct {
	path string
	mu   sync.Mutex
}

func hostKeyAlias(vmID string) string { return "banger-" + vmID }

// Set pins key for the VM, replacing any earlier key.
func (k *knownHosts) Set(vmID string, key ssh.PublicKey) error {
	line := hostKeyAlias(vmID) + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))) + "\n"
	return k.rewrite(vmID, line)
}

// Remove unpins the VM's key.
func (k *knownHosts) Remove(vmID string) error { return k.rewrite(vmID, "") }

// Get returns the key pinned for the VM, nil when there is none.
func (k *knownHosts) Get(vmID string) ssh.PublicKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	data, _ := os.ReadFile(k.path)
	prefix := hostKeyAlias(vmID) + " "
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			if key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(rest)); err == nil {
				return key
			}
		}
	}
	return nil
}

func (k *knownHosts) rewrite(vmID, newLine string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	data, err := os.ReadFile(k.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var out bytes.Buffer
	prefix := hostKeyAlias(vmID) + " "
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if line := sc.Text(); line != "" && !strings.HasPrefix(line, prefix) {
			out.WriteString(line + "\n")
		}
	}
	out.WriteString(newLine)
	if err := os.MkdirAll(filepath.Dir(k.path), 0o700); err != nil {
		return err
	}
	return sshkey.WriteFileAtomic(k.path, out.Bytes(), 0o600)
}
