package vms

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/crypto/ssh"

	"banger/internal/api"
	"banger/internal/errdefs"
	"banger/internal/guestssh"
	"banger/internal/model"
	"banger/internal/sshkey"
	"banger/internal/vmm"
)

// sshReadyLimit bounds the wait for a booting guest's SSH server.
const sshReadyLimit = api.BootLimit

// ErrHostKeyMismatch: the guest answered with a host key other than the
// one banger gave it.
var ErrHostKeyMismatch = guestssh.ErrHostKeyMismatch

// waitSSH waits until the guest's SSH server accepts the daemon's key
// and shows the host key pinned for this VM.
func (s *Service) waitSSH(ctx context.Context, vm model.VMRecord, h vmm.Handle) error {
	key, err := sshkey.Load(s.cfg.SSHKeyPath)
	if err != nil {
		return fmt.Errorf("daemon ssh key: %w", err)
	}
	pinned := s.knownHosts.Get(vm.ID)
	if pinned == nil {
		return fmt.Errorf("vm %s has no pinned host key: %w", vm.Name, errdefs.ErrConflict)
	}
	cfg := &ssh.ClientConfig{
		User:            "root",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(key.Signer)},
		HostKeyCallback: guestssh.PinnedHostKey(pinned),
		Timeout:         5 * time.Second,
	}
	addr := net.JoinHostPort(vm.Runtime.GuestIP, s.sshPort)
	ctx, cancel := context.WithTimeout(ctx, sshReadyLimit)
	defer cancel()
	var last error
	for {
		if !vmm.Alive(h) {
			return fmt.Errorf("the VMM exited while the guest booted (last ssh error: %v)", last)
		}
		last = trySSH(ctx, addr, cfg)
		switch {
		case last == nil:
			return nil
		case errors.Is(last, ErrHostKeyMismatch):
			return fmt.Errorf("vm %s answers with a host key other than the one banger gave it: %w", vm.Name, errdefs.Mark(errdefs.ErrConflict, last))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the guest's SSH server did not answer within %s (last error: %v): %w", sshReadyLimit, last, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// trySSH makes one SSH login at addr and closes it again.
func trySSH(ctx context.Context, addr string, cfg *ssh.ClientConfig) error {
	var dialer net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	conn, err := dialer.DialContext(dctx, "tcp", addr)
	cancel()
	if err != nil {
		return err
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		conn.Close()
		return err
	}
	return ssh.NewClient(c, chans, reqs).Close()
}

// SSHInfo says how to reach a running VM's SSH server, and touches it.
func (s *Service) SSHInfo(ctx context.Context, ref string) (api.VMSSHInfo, error) {
	vm, unlock, err := s.runningVM(ctx, ref)
	if err != nil {
		return api.VMSSHInfo{}, err
	}
	defer unlock()
	s.touch(ctx, &vm)
	return api.VMSSHInfo{
		Host: vm.Runtime.GuestIP, Port: 22, User: "root",
		IdentityFile:   s.cfg.SSHKeyPath,
		KnownHostsFile: s.knownHosts.path,
		HostKeyAlias:   hostKeyAlias(vm.ID),
	}, nil
}

// GuestTarget is how the daemon reaches a running VM's SSH server: its
// address, the daemon's key and the host key pinned for it. It touches
// the VM.
func (s *Service) GuestTarget(ctx context.Context, ref string) (model.VMRecord, guestssh.Target, error) {
	vm, unlock, err := s.runningVM(ctx, ref)
	if err != nil {
		return vm, guestssh.Target{}, err
	}
	defer unlock()
	key, err := sshkey.Load(s.cfg.SSHKeyPath)
	if err != nil {
		return vm, guestssh.Target{}, fmt.Errorf("daemon ssh key: %w", err)
	}
	pinned := s.knownHosts.Get(vm.ID)
	if pinned == nil {
		return vm, guestssh.Target{}, fmt.Errorf("vm %s has no pinned host key: %w", vm.Name, errdefs.ErrConflict)
	}
	s.touch(ctx, &vm)
	return vm, guestssh.Target{
		VMID: vm.ID, Name: vm.Name, Addr: net.JoinHostPort(vm.Runtime.GuestIP, s.sshPort),
		Signer: key.Signer, HostKey: pinned,
	}, nil
}

// runningVM finds and locks a VM that must be running.
func (s *Service) runningVM(ctx context.Context, ref string) (model.VMRecord, func(), error) {
	vm, unlock, err := s.findVM(ctx, ref)
	if err != nil {
		return vm, nil, err
	}
	if vm.State != model.VMStateRunning {
		unlock()
		return vm, nil, fmt.Errorf("vm %s is %s; start it with 'banger vm start %s': %w", vm.Name, vm.State, vm.Name, errdefs.ErrConflict)
	}
	return vm, unlock, nil
}
