// Package sshkey manages the SSH keys banger uses: the daemon's own
// ed25519 key, with which it logs in to every guest, and the per-VM host
// keys it generates so that each guest's identity can be pinned. Keys are
// written in OpenSSH format, private files 0600, atomically.
package sshkey

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

// Key is a private key and its public half.
type Key struct {
	Signer ssh.Signer
	// PrivatePEM is the OpenSSH private key file content.
	PrivatePEM []byte
}

// Public returns the public key.
func (k Key) Public() ssh.PublicKey { return k.Signer.PublicKey() }

// AuthorizedKey is the public key as one authorized_keys line.
func (k Key) AuthorizedKey(comment string) []byte {
	line := ssh.MarshalAuthorizedKey(k.Public()) // ends with \n
	if comment != "" {
		line = append(line[:len(line)-1], []byte(" "+comment+"\n")...)
	}
	return line
}

// Fingerprint is the key's SHA256 fingerprint, as ssh-keygen -l shows it.
func (k Key) Fingerprint() string { return ssh.FingerprintSHA256(k.Public()) }

// Generate makes a new ed25519 key.
func Generate(comment string) (Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Key{}, err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return Key{}, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return Key{}, err
	}
	return Key{Signer: signer, PrivatePEM: pem.EncodeToMemory(block)}, nil
}

// Load reads an OpenSSH private key file.
func Load(path string) (Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Key{}, err
	}
	signer, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return Key{}, fmt.Errorf("ssh key %s: %w", path, err)
	}
	return Key{Signer: signer, PrivatePEM: data}, nil
}

// Ensure loads the key at path, generating it (and path.pub) when
// missing. Its directory is created 0700. A key file readable by others
// is refused: ssh would refuse it too.
func Ensure(path, comment string) (Key, error) {
	fi, err := os.Stat(path)
	switch {
	case err == nil:
		if fi.Mode().Perm()&0o077 != 0 {
			return Key{}, fmt.Errorf("ssh key %s is readable by others (mode %#o); chmod 600 it", path, fi.Mode().Perm())
		}
		return Load(path)
	case !errors.Is(err, os.ErrNotExist):
		return Key{}, err
	}
	key, err := Generate(comment)
	if err != nil {
		return Key{}, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return Key{}, err
	}
	if err := WriteFileAtomic(path, key.PrivatePEM, 0o600); err != nil {
		return Key{}, err
	}
	if err := WriteFileAtomic(path+".pub", key.AuthorizedKey(comment), 0o644); err != nil {
		return Key{}, err
	}
	return key, nil
}

// WriteFileAtomic writes data to path through a temp file in the same
// directory, fsynced and renamed, so readers never see half a key.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
