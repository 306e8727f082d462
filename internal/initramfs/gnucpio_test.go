package initramfs

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// TestGNUCpioLists checks that GNU cpio, an independent newc reader,
// reads what Build writes.
func TestGNUCpioLists(t *testing.T) {
	cpio, err := exec.LookPath("cpio")
	if err != nil {
		t.Skip("GNU cpio is not installed (apt-get install cpio)")
	}
	archive := build(t, fakeKernel(t))
	var want []string
	for _, e := range readAll(t, archive) {
		want = append(want, e.Name)
	}

	cmd := exec.Command(cpio, "-t", "--quiet")
	cmd.Stdin = bytes.NewReader(archive)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cpio -t: %v: %s", err, stderr.String())
	}
	if got := strings.Fields(string(out)); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("cpio -t lists\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// And its long listing agrees on types and modes.
	cmd = exec.Command(cpio, "-tv", "--quiet")
	cmd.Stdin = bytes.NewReader(archive)
	out, err = cmd.Output()
	if err != nil {
		t.Fatalf("cpio -tv: %v", err)
	}
	for _, want := range []string{"drwxr-xr-x", "crw-------", "-rwxr-xr-x", "dr-xr-xr-x"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("cpio -tv output lacks %s:\n%s", want, out)
		}
	}
}
