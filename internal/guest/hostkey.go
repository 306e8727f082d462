package guest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"

	"banger/internal/guestapi"
)

// sshHostKeyPath is where sshd's default configuration looks for its
// ed25519 host key.
const sshHostKeyPath = "/etc/ssh/ssh_host_ed25519_key"

// What installHostKey did.
const (
	hostKeyInstalled = "installed the VM's host key from the work disk"
	hostKeyKept      = "kept the image's host keys"
	hostKeyGenerated = "generated an ed25519 host key"
)

// installHostKey puts an SSH host key where sshd finds it, under root.
// The VM's own key, which the daemon generated and pinned in its
// known_hosts, comes from the work disk (guestapi.HostKeyPath); its
// public half is derived from the private key rather than copied, so the
// two cannot disagree. With no key on the work disk and none in /etc/ssh
// at all, a new ed25519 key is generated so that sshd can start.
func installHostKey(root, comment string) (string, error) {
	src := filepath.Join(root, guestapi.HostKeyPath)
	priv, err := os.ReadFile(src)
	switch {
	case err == nil:
		signer, err := ssh.ParsePrivateKey(priv)
		if err != nil {
			return "", fmt.Errorf("host key %s: %w", src, err)
		}
		return hostKeyInstalled, writeHostKey(root, priv, ssh.MarshalAuthorizedKey(signer.PublicKey()))
	case !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("read host key: %w", err)
	}

	existing, err := filepath.Glob(filepath.Join(root, "/etc/ssh/ssh_host_*_key"))
	if err != nil {
		return "", err
	}
	if len(existing) > 0 {
		return hostKeyKept, nil
	}
	priv, pub, err := newHostKey(comment)
	if err != nil {
		return "", err
	}
	return hostKeyGenerated, writeHostKey(root, priv, pub)
}

// newHostKey returns a new ed25519 key as an OpenSSH private key file and
// an authorized_keys-style public key line.
func newHostKey(comment string) (priv, pub []byte, err error) {
	pubKey, privKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate host key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(privKey, comment)
	if err != nil {
		return nil, nil, fmt.Errorf("encode host key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pubKey)
	if err != nil {
		return nil, nil, fmt.Errorf("encode host key: %w", err)
	}
	line := ssh.MarshalAuthorizedKey(sshPub) // ends in "\n"
	if comment != "" {
		line = append(line[:len(line)-1], " "+comment+"\n"...)
	}
	return pem.EncodeToMemory(block), line, nil
}

// writeHostKey writes the private key (0600) and its public half (0644)
// to sshd's ed25519 host key path under root.
func writeHostKey(root string, priv, pub []byte) error {
	path := filepath.Join(root, sshHostKeyPath)
	if err := writeFileIfChanged(path, priv, 0o600); err != nil {
		return err
	}
	return writeFileIfChanged(path+".pub", pub, 0o644)
}
