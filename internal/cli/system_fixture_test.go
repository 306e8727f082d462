package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeSystemd stands in for systemctl and keeps the helper unit's state.
type fakeSystemd struct {
	running         bool // /run/systemd/system exists
	enabled, active bool
	calls           []string
}

func (f *fakeSystemd) systemctl(_ context.Context, args ...string) error {
	f.calls = append(f.calls, strings.Join(args, " "))
	now := slices.Contains(args, "--now")
	switch args[0] {
	case "is-enabled":
		if !f.enabled {
			return errors.New("disabled")
		}
	case "is-active":
		if !f.active {
			return errors.New("inactive")
		}
	case "enable":
		f.enabled, f.active = true, f.active || now
	case "disable":
		f.enabled, f.active = false, f.active && !now
	case "start", "restart":
		f.active = true
	}
	return nil
}

// systemFixture runs `banger system …` in-process against a temporary
// root, with a fake euid, environment and systemd.
type systemFixture struct {
	t       *testing.T
	root    string // passed as --root to every command
	src     string // the directory of the "running banger": the three binaries
	euid    int
	env     map[string]string
	systemd *fakeSystemd
}

const (
	testUID  = 4201
	testUID2 = 4202
)

func newSystemFixture(t *testing.T) *systemFixture {
	t.Helper()
	f := &systemFixture{
		t:       t,
		root:    t.TempDir(),
		src:     t.TempDir(),
		env:     map[string]string{"SUDO_UID": fmt.Sprint(testUID), "SUDO_USER": "alice"},
		systemd: &fakeSystemd{},
	}
	// The test binary stands in for the three: uninstall removes only Go
	// binaries of banger's module, which it is.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range bangerBinaries {
		f.copyFile(exe, filepath.Join(f.src, name))
	}
	return f
}

func (f *systemFixture) host() systemHost {
	return systemHost{
		euid:           func() int { return f.euid },
		executable:     func() (string, error) { return filepath.Join(f.src, "banger"), nil },
		systemdRunning: func() bool { return f.systemd.running },
		systemctl:      f.systemd.systemctl,
	}
}

// run runs `banger system ARGS --root ROOT`, as Run would. --root is
// always given, so no test can write to the real /etc.
func (f *systemFixture) run(args ...string) (code int, stdout, stderr string) {
	f.t.Helper()
	var out, errb bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string { return f.env[k] }}
	root := a.rootCommand()
	for _, c := range root.Commands() {
		if c.Name() == "system" {
			root.RemoveCommand(c)
		}
	}
	root.AddCommand(a.systemCommandOn(f.host()))
	root.SetArgs(append(append([]string{"system"}, args...), "--root", f.root))
	root.SetOut(&out)
	root.SetErr(&errb)
	code = exitOK
	if err := root.ExecuteContext(context.Background()); err != nil {
		a.printError(err)
		code = exitError
		var ue usageError
		if errors.As(err, &ue) {
			code = exitUsage
		}
	}
	return code, out.String(), errb.String()
}

// mustRun runs a command that must succeed and returns its action lines
// (stdout without the notes that follow them), each with the fixture's
// root taken out of the paths it names, so that tests read as on the
// installed system (TestSystemMessagesNameFilesWritten checks that the
// messages do name the files under the root).
func (f *systemFixture) mustRun(args ...string) []string {
	f.t.Helper()
	code, stdout, stderr := f.run(append([]string{"--json"}, args...)...)
	if code != exitOK {
		f.t.Fatalf("banger system %v: exit %d\nstdout: %s\nstderr: %s", args, code, stdout, stderr)
	}
	var rep systemReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		f.t.Fatalf("banger system %v --json: %v\n%s", args, err, stdout)
	}
	var lines []string
	for _, a := range rep.Actions {
		lines = append(lines, f.hostView(a.Message))
	}
	return lines
}

// hostView is out with the fixture's root taken out of every path.
func (f *systemFixture) hostView(out string) string {
	return strings.ReplaceAll(out, f.root, "")
}

// path is a host path under the fixture's root.
func (f *systemFixture) path(p string) string { return filepath.Join(f.root, p) }

func (f *systemFixture) writeFile(p, content string, mode fs.FileMode) {
	f.t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		f.t.Fatal(err)
	}
}

func (f *systemFixture) copyFile(from, to string) {
	f.t.Helper()
	in, err := os.Open(from)
	if err != nil {
		f.t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		f.t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		f.t.Fatal(err)
	}
}

// tree describes every file and directory under the root: path, type,
// mode and a digest of the content.
func (f *systemFixture) tree() map[string]string {
	f.t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(f.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == f.root {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		desc := fi.Mode().String()
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" %x", sha256.Sum256(data))
		}
		out[strings.TrimPrefix(p, f.root)] = desc
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

// files lists the non-directories under the root.
func (f *systemFixture) files() []string {
	var files []string
	for p, desc := range f.tree() {
		if !strings.HasPrefix(desc, "d") {
			files = append(files, p)
		}
	}
	slices.Sort(files)
	return files
}

func wantLines(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("actions:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
