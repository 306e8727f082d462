package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/term"

	"banger/internal/api"
	"banger/internal/shellquote"
)

// runPIDFile is where the guest command of banger run writes its pid,
// which is its process group's (sshd makes each session's command a
// session leader), so that an interrupted banger run can end all of it.
const runPIDFile = "/tmp/.banger-run.pid"

// endLimit bounds ending an interrupted guest command.
const endLimit = 15 * time.Second

// runInGuest runs command (a login shell when there is none) in dir in
// the guest, over ssh as a child process, with a terminal when stdin is
// one. When ctx ends (banger run was interrupted), the guest command's
// process group is ended first (SIGTERM, SIGKILL after a while) — ssh
// going away alone would not stop a command without a terminal — and
// then ssh.
func (a *app) runInGuest(ctx context.Context, vm, dir string, command []string) (int, error) {
	info, bin, err := a.sshInfo(ctx, vm)
	if err != nil {
		return 0, err
	}
	remote := "cd " + shellquote.Quote(dir) + " && echo $$ > " + runPIDFile + " && exec "
	if len(command) == 0 {
		remote += `"${SHELL:-/bin/sh}" -l`
	} else {
		remote += shellquote.Join(command)
	}
	tty := ttyNo
	if f, ok := a.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		tty = ttyYes
	}
	argv := sshArgv(info, remote, tty)
	c := exec.Command(bin, argv[1:]...)
	c.Stdin, c.Stdout, c.Stderr = a.stdin, a.stdout, a.stderr
	if err := c.Start(); err != nil {
		return 0, fmt.Errorf("start ssh: %w", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- c.Wait() }()
	select {
	case err = <-waited:
	case <-ctx.Done():
		a.endGuestCommand(bin, info)
		c.Process.Signal(syscall.SIGTERM)
		err = <-waited
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return ee.ExitCode(), nil
	case errors.As(err, &ee):
		return 128 + int(ee.Sys().(syscall.WaitStatus).Signal()), nil
	}
	return 0, err
}

// endGuestCommand ends the process group of banger run's command in the
// guest: SIGTERM, then SIGKILL if it is still there after ten seconds.
func (a *app) endGuestCommand(bin string, info api.VMSSHInfo) {
	script := `p=$(cat ` + runPIDFile + `) || exit 0
kill -TERM -- "-$p" 2>/dev/null || exit 0
i=0; while kill -0 -- "-$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
kill -KILL -- "-$p" 2>/dev/null; exit 0`
	ctx, cancel := context.WithTimeout(context.Background(), endLimit)
	defer cancel()
	argv := sshArgv(info, script, ttyNo)
	c := exec.CommandContext(ctx, bin, argv[1:]...)
	if out, err := c.CombinedOutput(); err != nil {
		fmt.Fprintf(a.stderr, "banger: ending the command in the guest: %v %s\n", err, out)
	}
}
