package e2e

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"banger/internal/api"
	"banger/internal/testutil/guestboot"
	"banger/internal/testutil/testimage"
)

// TestImageBuildThroughCLI builds the default image as a user would:
// `banger image build` starts bangerd, shows each stage's progress, and
// ends with an image that ls and show report and that boots and takes an
// SSH login; rm then deletes it all.
func TestImageBuildThroughCLI(t *testing.T) {
	testimage.Require(t)
	guestboot.Require(t)
	u := newUser(t, "")

	unlock := testimage.Lock(t) // the package cache is shared with other test builds
	start := time.Now()
	r := u.banger("image", "build", "--size", "2G")
	unlock()
	if r.code != 0 {
		t.Fatalf("image build: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("banger image build: %s", time.Since(start).Round(time.Second))
	for _, stage := range []string{"validate", "bootstrap", "kernel", "initramfs", "customize", "rootfs", "register"} {
		if !regexp.MustCompile(`(?m)^✓ ` + regexp.QuoteMeta(stage) + ` +\d+\.\ds$`).MatchString(r.stderr) {
			t.Errorf("no progress line for stage %s in:\n%s", stage, r.stderr)
		}
	}
	if !strings.Contains(r.stderr, "mmdebstrap: ") {
		t.Errorf("no mmdebstrap progress details in:\n%s", r.stderr)
	}
	if !strings.HasPrefix(r.stdout, "built image default (") || !strings.Contains(r.stdout, "root filesystem 2G") {
		t.Errorf("build summary: %q", r.stdout)
	}

	if out := u.must("image", "ls").stdout; !strings.Contains(out, "default") || !strings.Contains(out, "built") {
		t.Errorf("image ls:\n%s", out)
	}
	show := u.must("image", "show", "default").stdout
	for _, want := range []string{"kind       built by banger", "initramfs  18 modules", "suite      bookworm from http"} {
		if !strings.Contains(show, want) {
			t.Errorf("image show lacks %q:\n%s", want, show)
		}
	}
	var det api.ImageDetail
	if err := json.Unmarshal([]byte(u.must("--json", "image", "show", "default").stdout), &det); err != nil {
		t.Fatal(err)
	}
	if det.Build == nil || det.Build.CachedDebs == 0 || !strings.HasPrefix(det.SeededSSHPublicKeyFingerprint, "SHA256:") {
		t.Errorf("image detail: %+v", det)
	}

	// It boots.
	n := guestboot.NewNetwork(t)
	g := guestboot.Boot(t, n, testimage.Image{Rootfs: det.RootfsPath, Kernel: det.KernelPath, Initrd: det.InitrdPath, WorkSeed: det.WorkSeedPath}, "built", guestboot.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	c, err := g.WaitSSH(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := guestboot.Run(c, "hostname"); err != nil || strings.TrimSpace(out) != "built" {
		t.Errorf("hostname: %q %v", out, err)
	}
	c.Close()
	g.Cmd.Process.Kill()
	g.Wait(10 * time.Second)

	// Building it again is refused; removing it deletes its files.
	if r := u.banger("image", "build"); r.code != 1 || !strings.Contains(r.stderr, `image "default" exists already; remove it first with 'banger image rm default'`) {
		t.Errorf("second build: %d %s", r.code, r.stderr)
	}
	u.must("image", "rm", "default")
	if _, err := os.Stat(det.ArtifactDir); !os.IsNotExist(err) {
		t.Errorf("image rm left %s", det.ArtifactDir)
	}
	if r := u.banger("image", "show", "default"); r.code != 1 || !strings.Contains(r.stderr, "not found (op-") {
		t.Errorf("show after rm: %d %s", r.code, r.stderr)
	}
}
