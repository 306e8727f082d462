package guest

import (
	"bytes"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"banger/internal/guestapi"
)

// seedWorkKey puts a host key on the work disk under root, as the daemon
// does, and returns its public key line.
func seedWorkKey(t *testing.T, root string) []byte {
	t.Helper()
	priv, pub, err := newHostKey("daemon")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, guestapi.HostKeyPath)
	os.MkdirAll(filepath.Dir(p), 0o700)
	if err := os.WriteFile(p, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	return pub
}

// checkKeyPair checks that sshd's ed25519 key under root is a valid pair
// with the modes sshd requires, and returns the public key.
func checkKeyPair(t *testing.T, root string) ssh.PublicKey {
	t.Helper()
	keyPath := filepath.Join(root, sshHostKeyPath)
	signer, err := ssh.ParsePrivateKey([]byte(readFile(t, keyPath)))
	if err != nil {
		t.Fatalf("private key: %v", err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(readFile(t, keyPath+".pub")))
	if err != nil {
		t.Fatalf("public key: %v", err)
	}
	if !bytes.Equal(pub.Marshal(), signer.PublicKey().Marshal()) {
		t.Error("public key does not match the private key")
	}
	if pub.Type() != ssh.KeyAlgoED25519 {
		t.Errorf("key type %s", pub.Type())
	}
	if m := mode(t, keyPath); m != 0o600 {
		t.Errorf("private key mode %v, want 0600", m)
	}
	if m := mode(t, keyPath+".pub"); m != 0o644 {
		t.Errorf("public key mode %v, want 0644", m)
	}
	return pub
}

func TestInstallHostKeyFromWorkDisk(t *testing.T) {
	root := t.TempDir()
	want := seedWorkKey(t, root)
	// The image's own keys do not stop the VM's key from being installed.
	os.MkdirAll(filepath.Join(root, "etc/ssh"), 0o755)
	os.WriteFile(filepath.Join(root, sshHostKeyPath), []byte("image key"), 0o600)

	did, err := installHostKey(root, "root@vm1")
	if err != nil {
		t.Fatal(err)
	}
	if did != hostKeyInstalled {
		t.Errorf("did %q", did)
	}
	wantPub, _, _, _, _ := ssh.ParseAuthorizedKey(want)
	if got := checkKeyPair(t, root); !bytes.Equal(got.Marshal(), wantPub.Marshal()) {
		t.Error("installed key is not the work disk's")
	}
	if got, want := readFile(t, filepath.Join(root, sshHostKeyPath)), readFile(t, filepath.Join(root, guestapi.HostKeyPath)); got != want {
		t.Error("private key not copied byte for byte")
	}

	before := modTimes(t, filepath.Join(root, "etc/ssh"))
	if did, err := installHostKey(root, "root@vm1"); err != nil || did != hostKeyInstalled {
		t.Fatalf("second run: %q, %v", did, err)
	}
	if after := modTimes(t, filepath.Join(root, "etc/ssh")); !maps.Equal(before, after) {
		t.Errorf("second run rewrote the keys")
	}
}

func TestInstallHostKeyGenerates(t *testing.T) {
	root := t.TempDir()
	did, err := installHostKey(root, "root@vm1")
	if err != nil {
		t.Fatal(err)
	}
	if did != hostKeyGenerated {
		t.Errorf("did %q", did)
	}
	pub := checkKeyPair(t, root)
	if line := readFile(t, filepath.Join(root, sshHostKeyPath+".pub")); !strings.HasSuffix(line, " root@vm1\n") {
		t.Errorf("public key line %q lacks the comment", line)
	}

	// A reboot keeps the generated key: the VM's identity does not change.
	if did, err := installHostKey(root, "root@vm1"); err != nil || did != hostKeyKept {
		t.Fatalf("second run: %q, %v", did, err)
	}
	if again := checkKeyPair(t, root); !bytes.Equal(again.Marshal(), pub.Marshal()) {
		t.Error("second run replaced the key")
	}

	// OpenSSH itself reads the key, when it is installed here.
	if _, err := exec.LookPath("ssh-keygen"); err == nil {
		out, err := exec.Command("ssh-keygen", "-y", "-f", filepath.Join(root, sshHostKeyPath)).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen -y: %v\n%s", err, out)
		}
		if !strings.HasPrefix(string(out), "ssh-ed25519 ") {
			t.Errorf("ssh-keygen -y: %s", out)
		}
	}
}

func TestInstallHostKeyKeepsImageKeys(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc/ssh"), 0o755)
	rsa := filepath.Join(root, "etc/ssh/ssh_host_rsa_key")
	os.WriteFile(rsa, []byte("rsa"), 0o600)
	did, err := installHostKey(root, "root@vm1")
	if err != nil || did != hostKeyKept {
		t.Fatalf("%q, %v", did, err)
	}
	if _, err := os.Stat(filepath.Join(root, sshHostKeyPath)); err == nil {
		t.Error("generated a key next to the image's")
	}
}

func TestInstallHostKeyRejectsGarbage(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, guestapi.HostKeyPath)
	os.MkdirAll(filepath.Dir(p), 0o700)
	os.WriteFile(p, []byte("not a key"), 0o600)
	if _, err := installHostKey(root, "root@vm1"); err == nil || !strings.Contains(err.Error(), guestapi.HostKeyPath) {
		t.Errorf("err = %v, want one naming the bad key", err)
	}
	if _, err := os.Stat(filepath.Join(root, sshHostKeyPath)); err == nil {
		t.Error("installed a bad key")
	}
}
