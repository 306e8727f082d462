package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"banger/internal/api"
	"banger/internal/failpoint"
)

// crashLane runs cells one after another in one environment of its own
// (helper, daemon, namespace, data directory on XFS), replaced by a
// fresh one after a cell that left something behind, so one cell's
// leftovers are never blamed on the next.
type crashLane struct {
	t   *testing.T // the lane's: environments live as long as it
	e   *vmEnv
	dir string // where failpoint files go
	n   int    // VMs made, for names
}

func newCrashLane(t *testing.T) *crashLane {
	return &crashLane{t: t, e: newCrashEnv(t), dir: t.TempDir()}
}

// fresh replaces the lane's environment, after a cell that left
// something behind in it.
func (l *crashLane) fresh() { l.e = newCrashEnv(l.t) }

func newCrashEnv(t *testing.T) *vmEnv {
	return newVMEnvAs(t, os.Getuid(), "vmm = \"qemu\"\n", onXFS)
}

// fpFile is the failpoint file the armed daemon writes its pid to.
func (l *crashLane) fpFile() string { return filepath.Join(l.dir, "failpoint") }

// armed is the environment of a daemon that stops at point.
func (l *crashLane) armed(point string) []string {
	return append(slices.Clone(l.e.env), failpoint.EnvPoint+"="+point, failpoint.EnvFile+"="+l.fpFile())
}

// run runs one cell and reports what it found. The environment's
// commands fail the cell's test, not the lane's, while it runs. After a
// cell with problems the lane calls fresh for a new environment.
func (l *crashLane) run(t *testing.T, c crashCell) (res cellResult) {
	e := l.e
	e.user.t = t
	start := time.Now()
	res.cell = c
	var v *runningCLI
	defer func() {
		l.unwind(v)
		res.took = time.Since(start)
		e.user.t = l.t
		t.Logf("%s: %s in %s %v", c, res.outcome, res.took.Round(100*time.Millisecond), res.problems)
	}()
	l.n++
	name := fmt.Sprintf("m%d", l.n)
	if err := l.prepare(c, name); err != nil {
		res.problems = append(res.problems, "before the verb: "+err.Error())
		return res
	}
	v = l.startCLI(l.armed(c.point.name), c.row.args(name)...)
	pid, err := l.waitPoint(v, c.point.name, pointLimit(c))
	if err != nil {
		res.problems = append(res.problems, err.Error())
		return res
	}
	if err := l.kill(c.target, pid, c.point.vmm); err != nil {
		res.problems = append(res.problems, err.Error())
		return res
	}
	os.Remove(l.fpFile()) // the daemon, if alive, carries on
	if err := v.wait(6 * time.Minute); err != nil {
		res.problems = append(res.problems, err.Error())
		return res
	}
	if c.target == "banger-helper" {
		l.e.startHelper()
	} // a killed bangerd is started by the next command; a VMM is not restarted: the daemon notices it gone
	var problem string
	res.outcome, problem = l.settle(name)
	if problem != "" {
		res.problems = append(res.problems, problem)
	}
	if c.row.verb == "create" && c.target == "bangerd" && c.point.name != "vm.create:done" && res.outcome == "running" {
		// The user was told the create failed, and its guest never
		// answered SSH: it is a create cut off, like any other.
		res.problems = append(res.problems, "a create cut off before its end was adopted as running; it must be torn down and kept in error")
	}
	res.problems = append(res.problems, l.remove(name)...)
	res.problems = append(res.problems, l.leftovers()...)
	return res
}

// pointLimit is how long the verb may take to reach the cell's point.
func pointLimit(c crashCell) time.Duration {
	if c.point.boots {
		return 5 * time.Minute
	}
	return time.Minute
}

// prepare brings the VM where the row's verb applies, then leaves a
// daemon running armed at the cell's point.
func (l *crashLane) prepare(c crashCell, name string) error {
	switch c.row.pre {
	case preCreated:
		l.e.must("vm", "create", "--no-start", "--nat", "--name", name)
	case preRunning:
		if err := l.runningVM(name); err != nil {
			return err
		}
	}
	if err := l.restartDaemon(l.armed(c.point.name)); err != nil {
		return err
	}
	if c.row.pre == preRunning {
		if det, found := l.find(name); !found || det.State != "running" {
			return fmt.Errorf("the VM was not adopted as running by the restarted daemon (%s)", det.State)
		}
	}
	return nil
}

// runningVM makes a running VM without waiting for its guest: created,
// then started by a daemon that is killed once the VMM runs, so the
// next daemon adopts it. Stop, rm and set need only a VMM that runs (stop
// and rm with --force do not ask the guest), and this costs a second
// where booting a guest to SSH costs ~17 s.
func (l *crashLane) runningVM(name string) error {
	l.e.must("vm", "create", "--no-start", "--nat", "--name", name)
	if err := l.restartDaemon(l.armed("vm.start:wait for ssh")); err != nil {
		return err
	}
	v := l.startCLI(l.armed("vm.start:wait for ssh"), "vm", "start", name)
	pid, err := l.waitPoint(v, "vm.start:wait for ssh", time.Minute)
	if err != nil {
		return err
	}
	if err := killProcess(pid); err != nil {
		return err
	}
	os.Remove(l.fpFile())
	return v.wait(time.Minute)
}

// restartDaemon stops the running daemon and starts one with env.
func (l *crashLane) restartDaemon(env []string) error {
	l.e.banger("daemon", "stop")
	r := runCLI(l.e.t, l.e.ns.Cmd(filepath.Join(l.e.bin, "banger"), "daemon", "start"), env, []string{"daemon", "start"})
	if r.code != 0 {
		return fmt.Errorf("daemon start: exit %d: %s", r.code, r.stderr)
	}
	return nil
}

// runningCLI is a banger command running in the background.
type runningCLI struct {
	args        []string
	cmd         *exec.Cmd
	out, errOut bytes.Buffer
	done        chan struct{}
	err         error
}

func (l *crashLane) startCLI(env []string, args ...string) *runningCLI {
	v := &runningCLI{args: args, cmd: l.e.ns.Cmd(filepath.Join(l.e.bin, "banger"), args...), done: make(chan struct{})}
	v.cmd.Env = env
	v.cmd.Stdout, v.cmd.Stderr = &v.out, &v.errOut
	if err := v.cmd.Start(); err != nil {
		v.err = err
		close(v.done)
		return v
	}
	go func() { v.err = v.cmd.Wait(); close(v.done) }()
	return v
}

func (v *runningCLI) finished() bool {
	select {
	case <-v.done:
		return true
	default:
		return false
	}
}

func (v *runningCLI) wait(limit time.Duration) error {
	select {
	case <-v.done:
		return nil
	case <-time.After(limit):
		return fmt.Errorf("banger %s still runs after %s", strings.Join(v.args, " "), limit)
	}
}

// waitPoint waits until the armed daemon reaches point and returns its
// pid; the command ending first means it never got there.
func (l *crashLane) waitPoint(v *runningCLI, point string, limit time.Duration) (int, error) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if data, err := os.ReadFile(l.fpFile()); err == nil && bytes.HasSuffix(data, []byte("\n")) {
			return strconv.Atoi(strings.TrimSpace(string(data)))
		}
		select {
		case <-v.done:
			return 0, fmt.Errorf("banger %s ended (%v) without reaching %s:\n%s%s", strings.Join(v.args, " "), v.err, point, v.out.String(), v.errOut.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return 0, fmt.Errorf("%s not reached within %s", point, limit)
}

// kill kills the cell's target with SIGKILL: the daemon waiting at the
// point, the helper, or the VM's VMM (which must run exactly when the
// table says one does).
func (l *crashLane) kill(target string, daemonPID int, vmmRuns bool) error {
	switch target {
	case "bangerd":
		return killProcess(daemonPID)
	case "banger-helper":
		l.e.helper.Process.Kill()
		l.e.helper.Wait()
		return nil
	}
	pids := qemuFor(l.vmsDir())
	if len(pids) == 0 {
		return fmt.Errorf("no VMM runs at this point (the table says one does: %v)", vmmRuns)
	}
	for _, pid := range pids {
		if err := killProcess(pid); err != nil {
			return err
		}
	}
	return nil
}

// killProcess sends SIGKILL and waits until the process is gone (or a
// zombie, which holds nothing).
func killProcess(pid int) error {
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill %d: %w", pid, err)
	}
	for i := 0; i < 500; i++ {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || bytes.Contains(stat, []byte(") Z ")) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("pid %d still runs 5 s after SIGKILL", pid)
}

// unwind leaves the lane ready for the next cell whatever happened:
// the daemon let go, the command ended, a helper running.
func (l *crashLane) unwind(v *runningCLI) {
	os.Remove(l.fpFile())
	if v != nil && !v.finished() {
		v.cmd.Process.Kill()
		<-v.done
	}
	if l.e.helper.ProcessState != nil {
		l.e.startHelper()
	}
}

func (l *crashLane) dataDir() string {
	dir := ""
	for _, kv := range l.e.env {
		if v, ok := strings.CutPrefix(kv, "XDG_DATA_HOME="); ok {
			dir = v
		}
	}
	return filepath.Join(dir, "banger")
}

func (l *crashLane) vmsDir() string { return filepath.Join(l.dataDir(), "vms") }

// find is the VM's record, and whether the daemon has one.
func (l *crashLane) find(name string) (api.VMDetail, bool) {
	var det api.VMDetail
	r := l.e.banger("--json", "vm", "show", name)
	if r.code != 0 {
		if !strings.Contains(r.stderr, "not_found") && !strings.Contains(r.stderr, "not found") {
			l.e.t.Errorf("vm show %s: exit %d: %s", name, r.code, r.stderr)
		}
		return det, false
	}
	if err := json.Unmarshal([]byte(r.stdout), &det); err != nil {
		l.e.t.Errorf("vm show %s: %v", name, err)
		return det, false
	}
	return det, true
}
