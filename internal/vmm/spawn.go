package vmm

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// StartError is a VMM that exited, never answered, or refused its
// configuration, with the last lines of its log.
type StartError struct {
	Driver  string
	Err     error
	LogName string // the log's file name, for the message
	Log     string // its last lines, "" if none
}

func (e *StartError) Error() string {
	msg := "start " + e.Driver + ": " + e.Err.Error()
	if e.Log != "" {
		msg += "; " + e.LogName + " ends:\n" + e.Log
	}
	return msg
}

func (e *StartError) Unwrap() error { return e.Err }

// Spawned is a VMM process just started in a session of its own. While
// the caller lives, a goroutine reaps it; Exited is closed then.
type Spawned struct {
	Handle Handle
	Exited <-chan struct{}

	cmd     *exec.Cmd
	waitErr error
}

// Spawn starts argv as a VMM for driver: a session of its own (so it
// outlives the caller and its group can be killed whole), /dev/null as
// stdin, stdout and stderr as given (files are handed over as they are,
// no pipes), extra files inherited from fd 3 on. The handle's start
// time is read before anything reaps the child, so it names this
// process even if it has already exited.
func Spawn(driver string, argv []string, dir string, stdout, stderr *os.File, extra []*os.File, control string) (*Spawned, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.ExtraFiles = extra
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", driver, err)
	}
	h, herr := HandleFor(driver, cmd.Process.Pid, control)
	exited := make(chan struct{})
	s := &Spawned{Handle: h, cmd: cmd, Exited: exited}
	go func() {
		s.waitErr = cmd.Wait()
		close(exited)
	}()
	if herr != nil {
		s.Abort()
		return nil, herr
	}
	return s, nil
}

// WaitErr is how the process ended; call it once Exited is closed.
func (s *Spawned) WaitErr() error {
	<-s.Exited
	return s.waitErr
}

// Abort kills the VMM's whole session group and waits until it is
// reaped: a start that failed leaves nothing running.
func (s *Spawned) Abort() {
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	s.cmd.Process.Kill()
	<-s.Exited
}
