package vms

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"banger/internal/errdefs"
	"banger/internal/sshkey"
)

// newKey is a fresh ed25519 key.
func newKey(t *testing.T) sshkey.Key {
	t.Helper()
	k, err := sshkey.Generate("test")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sameKey(a, b ssh.PublicKey) bool {
	return a != nil && b != nil && bytes.Equal(a.Marshal(), b.Marshal())
}

// TestCreatePinsHostKeyBeforeFirstContact: the host key is made for the
// VM and pinned in banger's known_hosts at create, before the guest
// ever answers (a create that does not boot has it pinned too); the key
// on the work disk is the pinned one, and the create's SSH wait
// verified it.
func TestCreatePinsHostKeyBeforeFirstContact(t *testing.T) {
	e := newEnv(t)
	vm := e.mustCreate("pinned", false, false)
	onDisk, err := e.workDiskHostKey()
	if err != nil {
		t.Fatal(err)
	}
	if !sameKey(e.s.knownHosts.Get(vm.ID), onDisk.PublicKey()) {
		t.Error("the pinned key is not the one on the work disk")
	}
	if e.guest.loginCount() == 0 {
		t.Error("create did not log in to the guest")
	}
	path := filepath.Join(e.layout.StateDir, "known_hosts")
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("known_hosts: %v, mode %v", err, fi.Mode())
	}
	data, _ := os.ReadFile(path)
	line := "banger-" + vm.ID + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(onDisk.PublicKey())))
	if !strings.Contains(string(data), line+"\n") {
		t.Errorf("known_hosts %q lacks %q", data, line)
	}
	info, err := e.s.SSHInfo(context.Background(), "pinned")
	if err != nil || info.KnownHostsFile != path || info.HostKeyAlias != "banger-"+vm.ID || info.Host != vm.Runtime.GuestIP {
		t.Errorf("ssh info %+v, %v", info, err)
	}

	idle := e.mustCreate("idle", false, true)
	if e.s.knownHosts.Get(idle.ID) == nil {
		t.Error("a VM created without booting has no pinned key")
	}
}

// TestHostKeyMismatchFailsCreate: a guest answering with another host
// key fails the create with ErrHostKeyMismatch (a conflict), the
// impostor's key is not recorded, and the create is rolled back.
func TestHostKeyMismatchFailsCreate(t *testing.T) {
	e := newEnv(t)
	impostor := newKey(t)
	e.impostor.Store(&impostor)
	_, op, err := e.create(withNAT(e.req("spoofed")))
	if !errors.Is(err, ErrHostKeyMismatch) || !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "answers with a host key other than the one banger gave it") {
		t.Fatalf("create: %v; want a host key mismatch", err)
	}
	if op.ErrorCode != string(errdefs.CodeConflict) {
		t.Errorf("operation code %q, want conflict", op.ErrorCode)
	}
	data, _ := os.ReadFile(e.s.KnownHostsPath())
	if bytes.Contains(data, bytes.TrimSpace(ssh.MarshalAuthorizedKey(impostor.Public()))) {
		t.Error("the impostor's key was recorded")
	}
	id := e.firstID()
	e.assertNothingLeft(id)
	if s, p := e.hooks.counts(id); s != 1 || p != 1 {
		t.Errorf("hooks started %d, stopped %d; want 1, 1", s, p)
	}
}

// TestWaitSSHHostKeys: against a running guest, the wait accepts the
// pinned key only; a changed key is ErrHostKeyMismatch and does not
// replace the pinned one; a VM with no pinned key is refused (the first
// contact records nothing: keys are pinned at create).
func TestWaitSSHHostKeys(t *testing.T) {
	e := newEnv(t)
	vm := e.mustCreate("ssh", false, false)
	h, _ := e.handles(vm)
	ctx := context.Background()
	if err := e.s.waitSSH(ctx, vm, h.VMM); err != nil {
		t.Fatalf("pinned key: %v", err)
	}

	other := newKey(t)
	if err := e.s.knownHosts.Set(vm.ID, other.Public()); err != nil {
		t.Fatal(err)
	}
	err := e.s.waitSSH(ctx, vm, h.VMM)
	if !errors.Is(err, ErrHostKeyMismatch) || !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("changed key: %v, want ErrHostKeyMismatch", err)
	}
	if !sameKey(e.s.knownHosts.Get(vm.ID), other.Public()) {
		t.Error("a mismatch replaced the pinned key")
	}

	if err := e.s.knownHosts.Remove(vm.ID); err != nil {
		t.Fatal(err)
	}
	logins := e.guest.loginCount()
	err = e.s.waitSSH(ctx, vm, h.VMM)
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "no pinned host key") {
		t.Errorf("no pinned key: %v", err)
	}
	if e.s.knownHosts.Get(vm.ID) != nil || e.guest.loginCount() != logins {
		t.Error("a VM without a pinned key was contacted or had its key recorded")
	}
}

// TestKnownHostsFile: each VM's line is set, replaced and removed
// alone; lines banger did not write are kept.
func TestKnownHostsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "known_hosts")
	kh := &knownHosts{path: path}
	mustWrite(t, path, []byte("someone-else ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKeep\n"))
	a, b, a2 := newKey(t), newKey(t), newKey(t)
	for _, step := range []struct {
		id  string
		key sshkey.Key
	}{{"vm-a", a}, {"vm-b", b}, {"vm-a", a2}} {
		if err := kh.Set(step.id, step.key.Public()); err != nil {
			t.Fatal(err)
		}
	}
	if !sameKey(kh.Get("vm-a"), a2.Public()) || !sameKey(kh.Get("vm-b"), b.Public()) {
		t.Error("Set did not replace exactly the VM's own key")
	}
	if err := kh.Remove("vm-a"); err != nil {
		t.Fatal(err)
	}
	if kh.Get("vm-a") != nil || !sameKey(kh.Get("vm-b"), b.Public()) {
		t.Error("Remove removed the wrong line")
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), "someone-else ") || strings.Count(string(data), "\n") != 2 {
		t.Errorf("known_hosts now %q", data)
	}
}
