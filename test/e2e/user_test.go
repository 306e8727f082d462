package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"banger/internal/lockfile"
	"banger/internal/testutil/binaries"
	"banger/internal/testutil/testimage"
)

// user is one banger user's environment: a HOME, a runtime dir, the
// built binaries, and a config file. Commands run as real processes.
type user struct {
	t    testing.TB
	bin  string
	home string
	run  string
	env  []string
}

func newUser(t testing.TB, config string) *user {
	t.Helper()
	u := &user{t: t, bin: binaries.Dir(t), home: t.TempDir()}
	var err error
	if u.run, err = os.MkdirTemp("", "bgu"); err != nil { // short: socket paths
		t.Fatal(err)
	}
	cfg := filepath.Join(u.home, ".config", "banger", "config.toml")
	os.MkdirAll(filepath.Dir(cfg), 0o700)
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	u.env = append(os.Environ(),
		"HOME="+u.home,
		"XDG_RUNTIME_DIR="+u.run,
		"XDG_CACHE_HOME="+testimage.CacheDir(), // share downloaded packages with the test image
		"XDG_CONFIG_HOME="+filepath.Join(u.home, ".config"),
		"XDG_STATE_HOME="+filepath.Join(u.home, ".local", "state"),
		"XDG_DATA_HOME="+filepath.Join(u.home, ".local", "share"),
		"BANGER_CONFIG=",
		"PATH="+u.bin+":"+os.Getenv("PATH"),
	)
	t.Cleanup(func() {
		u.banger("daemon", "stop")
		if pid := lockfile.ReadPID(filepath.Join(u.run, "banger", "bangerd.lock")); pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		os.RemoveAll(u.run)
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(u.home, ".local", "state", "banger", "bangerd.log"))
			t.Logf("bangerd log:\n%s", lastLines(string(log), 60))
		}
	})
	return u
}

// result of one command.
type result struct {
	stdout, stderr string
	code           int
}

// banger runs the CLI and returns what it printed and its exit status.
func (u *user) banger(args ...string) result {
	u.t.Helper()
	return runCLI(u.t, exec.Command(filepath.Join(u.bin, "banger"), args...), u.env, args)
}

// runCLI runs cmd, a banger command line (args are its arguments, for
// the message), with env; a non-zero exit is a result, not a failure.
func runCLI(t testing.TB, cmd *exec.Cmd, env, args []string) result {
	t.Helper()
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("banger %v: %v", args, err)
	}
	return r
}

// must runs the CLI and fails the test unless it succeeds.
func (u *user) must(args ...string) result {
	u.t.Helper()
	r := u.banger(args...)
	if r.code != 0 {
		u.t.Fatalf("banger %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
