package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"banger/internal/testutil/testimage"
)

// TestImageBuildInterrupted: Ctrl-C during `banger image build` cancels
// the build; the CLI waits for the clean-up and says so, and nothing but
// the build log is left.
func TestImageBuildInterrupted(t *testing.T) {
	testimage.Require(t)
	u := newUser(t, "")
	unlock := testimage.Lock(t)
	defer unlock()

	cmd := exec.Command(filepath.Join(u.bin, "banger"), "image", "build", "--name", "cancelme")
	cmd.Env = u.env
	stderr, _ := cmd.StderrPipe()
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	sc := bufio.NewScanner(stderr)
	interrupted := false
	for sc.Scan() {
		line := sc.Text()
		log.WriteString(line + "\n")
		// Interrupt once mmdebstrap is well under way.
		if !interrupted && strings.Contains(line, "mmdebstrap: installing essential packages") {
			interrupted = true
			cmd.Process.Signal(syscall.SIGINT)
		}
	}
	err := cmd.Wait()
	if !interrupted {
		t.Fatalf("the build never got to installing packages:\n%s", log.String())
	}
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v\n%s", err, log.String())
	}
	for _, want := range []string{"interrupted: cancelling op-", "image.build cancelme cancelled: context canceled", "build log: "} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, log.String())
		}
	}

	images := filepath.Join(u.home, ".local", "share", "banger", "images")
	entries, _ := os.ReadDir(images)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 1 || !strings.HasPrefix(names[0], "build-") || !strings.HasSuffix(names[0], ".log") {
		t.Errorf("a cancelled build left %v in %s; want only its log", names, images)
	}
	if r := u.banger("image", "ls"); !strings.Contains(r.stdout, "no images") {
		t.Errorf("image ls after a cancelled build: %s", r.stdout)
	}
	// mmdebstrap and everything it ran are gone.
	time.Sleep(200 * time.Millisecond)
	if out, _ := exec.Command("pgrep", "-f", "mmdebstrap.*cancelme|\\.build-").Output(); len(out) > 0 {
		t.Errorf("processes of the cancelled build still run: %s", out)
	}
}
