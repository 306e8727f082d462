package sshkey

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestEnsureGeneratesOnceAndReloads(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ssh", "id_ed25519")
	k1, err := Ensure(path, "bangerd")
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v", fi.Mode())
	}
	if fi, _ := os.Stat(filepath.Dir(path)); fi.Mode().Perm() != 0o700 {
		t.Errorf("key dir mode %v", fi.Mode())
	}
	pub, _ := os.ReadFile(path + ".pub")
	if !bytes.HasPrefix(pub, []byte("ssh-ed25519 ")) || !bytes.HasSuffix(pub, []byte(" bangerd\n")) {
		t.Errorf("public key file %q", pub)
	}
	k2, err := Ensure(path, "bangerd")
	if err != nil || k2.Fingerprint() != k1.Fingerprint() {
		t.Fatalf("second Ensure gave another key: %v", err)
	}
	if !strings.HasPrefix(k1.Fingerprint(), "SHA256:") {
		t.Errorf("fingerprint %q", k1.Fingerprint())
	}
	// ssh-keygen agrees with the fingerprint, when it is installed.
	if _, err := exec.LookPath("ssh-keygen"); err == nil {
		out, err := exec.Command("ssh-keygen", "-l", "-f", path+".pub").Output()
		if err != nil || !strings.Contains(string(out), k1.Fingerprint()) {
			t.Errorf("ssh-keygen -l: %s %v", out, err)
		}
	}
}

func TestEnsureRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	loose := filepath.Join(dir, "loose")
	k, _ := Generate("")
	os.WriteFile(loose, k.PrivatePEM, 0o644)
	if _, err := Ensure(loose, ""); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Errorf("world-readable key: %v", err)
	}
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, []byte("not a key"), 0o600)
	if _, err := Ensure(junk, ""); err == nil || !strings.Contains(err.Error(), junk) {
		t.Errorf("junk key: %v", err)
	}
}
