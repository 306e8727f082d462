package helper

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"banger/internal/testutil/netns"
)

// refusesToStart runs the helper with args and wants it to exit non-zero
// at once, its log saying each of says. A helper that starts instead is
// killed (it runs in ns, so a start touches nothing on the host).
func refusesToStart(t *testing.T, ns *netns.NS, exe string, says []string, args ...string) {
	t.Helper()
	cmd := ns.Cmd(exe, args...)
	cmd.Env = append(os.Environ(), envRunHelper+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Errorf("helper exited with %v, want a refusal; log:\n%s", err, out.String())
			return
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Errorf("helper started; want a refusal saying %q; log:\n%s", says, out.String())
		return
	}
	for _, s := range says {
		if !strings.Contains(out.String(), s) {
			t.Errorf("refusal does not say %q:\n%s", s, out.String())
		}
	}
}

// copyExe installs the helper binary at path with mode.
func copyExe(t *testing.T, from, path string, mode os.FileMode) string {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRefusesUnsafeStart: the helper starts only when its binary, its
// config, its socket and its state, and every directory above each,
// can be changed by root alone; each refusal names the path at fault,
// and a refused start leaves nothing behind.
func TestRefusesUnsafeStart(t *testing.T) {
	ns := netns.New(t)
	h := newHelperDir(t, ns, 0)
	d := h.dir
	userDir := func(name string) string { // a directory owned by nobody
		p := mkdirMode(t, filepath.Join(d, name), 0o755)
		chown(t, p, nobody)
		return p
	}
	cfgIn := func(dir string) string {
		p := filepath.Join(dir, "helper.toml")
		writeFile(t, p, "allowed_uids = [0]\n", 0o644)
		return p
	}
	std := func(config, socket, state string) []string {
		return []string{"--config", config, "--socket", socket, "--state", state}
	}
	good := std(h.config, h.socket, h.state)

	// The binary (finding 4).
	loose := copyExe(t, h.exe, filepath.Join(d, "bin-0777"), 0o777)
	refusesToStart(t, ns, loose, []string{loose, "writable by group or others (mode 0777)"}, good...)
	theirs := copyExe(t, h.exe, filepath.Join(d, "bin-nobody"), 0o755)
	chown(t, theirs, nobody)
	refusesToStart(t, ns, theirs, []string{theirs, "owned by uid 65534"}, good...)
	ubin := userDir("ubin")
	inUserDir := copyExe(t, h.exe, filepath.Join(ubin, "banger-helper"), 0o755)
	refusesToStart(t, ns, inUserDir, []string{ubin + " is owned by uid 65534"}, good...)
	openBin := mkdirMode(t, filepath.Join(d, "open", "bin"), 0o755)
	os.Chmod(filepath.Dir(openBin), 0o777)
	underOpen := copyExe(t, h.exe, filepath.Join(openBin, "banger-helper"), 0o755)
	refusesToStart(t, ns, underOpen, []string{filepath.Dir(openBin) + " is writable by group or others"}, good...)

	// The config (finding 2).
	os.Chmod(h.config, 0o666)
	refusesToStart(t, ns, h.exe, []string{h.config, "writable by group or others"}, good...)
	os.Chmod(h.config, 0o644)
	os.Symlink(h.config, h.config+".link")
	refusesToStart(t, ns, h.exe, []string{h.config + ".link", "symlink"}, std(h.config+".link", h.socket, h.state)...)
	openEtc := mkdirMode(t, filepath.Join(d, "etc-0777"), 0o777)
	refusesToStart(t, ns, h.exe, []string{openEtc, "writable by group or others (mode 0777)"}, std(cfgIn(openEtc), h.socket, h.state)...)
	userEtc := userDir("etc-nobody")
	refusesToStart(t, ns, h.exe, []string{userEtc, "owned by uid 65534"}, std(cfgIn(userEtc), h.socket, h.state)...)
	above := userDir("above")
	inside := mkdirMode(t, filepath.Join(above, "banger"), 0o755)
	refusesToStart(t, ns, h.exe, []string{above, "owned by uid 65534"}, std(cfgIn(inside), h.socket, h.state)...)

	// The socket and the state (finding 3).
	openRun := mkdirMode(t, filepath.Join(d, "run-0777"), 0o777)
	refusesToStart(t, ns, h.exe, []string{"socket directory", openRun, "writable by group or others"},
		std(h.config, filepath.Join(openRun, "helper.sock"), h.state)...)
	urun := userDir("urun")
	runDir := mkdirMode(t, filepath.Join(urun, "banger"), 0o755)
	refusesToStart(t, ns, h.exe, []string{"socket directory", urun, "owned by uid 65534"},
		std(h.config, filepath.Join(runDir, "helper.sock"), h.state)...)
	refusesToStart(t, ns, h.exe, []string{"socket directory", urun},
		std(h.config, filepath.Join(urun, "new", "helper.sock"), h.state)...)
	if _, err := os.Lstat(filepath.Join(urun, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused start made %s/new: %v", urun, err)
	}
	ustate := userDir("ustate")
	refusesToStart(t, ns, h.exe, []string{"state directory", ustate, "owned by uid 65534"},
		std(h.config, h.socket, filepath.Join(ustate, "state", "helper-state.json"))...)
	newRun := filepath.Join(d, "newrun")
	refusesToStart(t, ns, h.exe, []string{"state directory", ustate},
		std(h.config, filepath.Join(newRun, "helper.sock"), filepath.Join(ustate, "state", "helper-state.json"))...)
	if _, err := os.Lstat(newRun); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a start refused for its state left the socket directory it made: %v", err)
	}
	mkdirMode(t, filepath.Dir(h.state), 0o755)
	writeFile(t, h.state, "{}\n", 0o644)
	chown(t, h.state, nobody)
	refusesToStart(t, ns, h.exe, []string{"state file", h.state, "owned by uid 65534"}, good...)
	chown(t, h.state, 0)
	if _, err := os.Lstat(h.socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused start left its socket: %v", err)
	}

	// Installed as root installs it, it starts: a root 0755 binary in a
	// root 0755 directory, under /tmp (sticky).
	installed := mkdirMode(t, filepath.Join(d, "usr", "local", "bin"), 0o755)
	h.exe = copyExe(t, h.exe, filepath.Join(installed, "banger-helper"), 0o755)
	h.start()
	if recs := h.logRecords("helper started"); len(recs) != 1 {
		t.Errorf("helper started %d times, want 1:\n%s", len(recs), h.log())
	}
}
