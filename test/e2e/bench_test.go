package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"banger/internal/imagebuild"
	"banger/internal/testutil/guestboot"
	"banger/internal/testutil/testimage"
)

// BenchmarkImageBuild builds the default image with the real builder:
// /cold with an empty package cache (everything downloaded from the
// mirror), then /warm with the cache the cold build filled. Run with
// -benchtime 1x: one build is a minute or more.
func BenchmarkImageBuild(b *testing.B) {
	testimage.Require(b)
	guestBin, err := testimage.GuestBinary()
	if err != nil {
		b.Fatal(err)
	}
	work := b.TempDir()
	builder := &imagebuild.Builder{
		ImagesDir: filepath.Join(work, "images"),
		Guest:     imagebuild.BangerGuest(guestBin),
	}
	os.MkdirAll(builder.ImagesDir, 0o700)
	n := 0
	build := func(b *testing.B, fresh bool) {
		for b.Loop() {
			n++
			if fresh {
				// Cold: every iteration starts from an empty package cache.
				builder.CacheDir = filepath.Join(work, fmt.Sprintf("apt-archives-%d", n))
			}
			art, err := builder.Build(context.Background(), fmt.Sprintf("bench%d", n), imagebuild.Recipe{Name: "bench"}, nopReporter{})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(art.Duration.Seconds(), "s/build")
			os.RemoveAll(art.ArtifactDir)
		}
	}
	b.Run("cold", func(b *testing.B) { build(b, true) })
	b.Run("warm", func(b *testing.B) { build(b, false) }) // the last cold build's cache
}

type nopReporter struct{}

func (nopReporter) Stage(string)           {}
func (nopReporter) Detail(string, float64) {}

// BenchmarkBootToSSHPlainQEMU: from starting plain QEMU on the built image
// to the first successful SSH login — the baseline `banger vm create` to
// SSH-ready is held against.
func BenchmarkBootToSSHPlainQEMU(b *testing.B) {
	img := testimage.Get(b)
	guestboot.Require(b)
	n := guestboot.NewNetwork(b)
	for b.Loop() {
		g := guestboot.Boot(b, n, img, "bench", guestboot.Options{})
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		c, err := g.WaitSSH(ctx)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(g.SSHReadyAt.Sub(g.BootedAt).Seconds(), "s/boot-to-ssh")
		c.Close()
		g.Cmd.Process.Kill()
		g.Wait(10 * time.Second)
	}
}
