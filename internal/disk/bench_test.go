package disk

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"banger/internal/guestapi"
	"banger/internal/model"
)

// rootfsLike makes a 1 GiB sparse file with 300 MiB of data in 75
// extents spread over it, the shape of a built image's rootfs.ext4.
func rootfsLike(b *testing.B, path string) {
	b.Helper()
	chunks := map[int64]int{}
	for i := int64(0); i < 75; i++ {
		chunks[i*(1<<30)/75&^(1<<20-1)] = 4 << 20
	}
	writeSparse(b, path, 1<<30, chunks)
	if a := allocated(b, path); a < 290<<20 || a > 310<<20 {
		b.Fatalf("benchmark image allocates %d bytes, want ~300 MiB", a)
	}
}

// cloneBench times clone(i) for each iteration, removing its output
// outside the timer.
func cloneBench(b *testing.B, dir string, clone func(dst string) error) {
	for i := 0; i < b.N; i++ {
		dst := filepath.Join(dir, fmt.Sprintf("overlay-%d", i))
		if err := clone(dst); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := os.Remove(dst); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

func cp(args ...string) func(dst string) error {
	return func(dst string) error {
		out, err := exec.Command("cp", append(args, dst)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("cp: %w: %s", err, out)
		}
		return nil
	}
}

// BenchmarkOverlayCopy/clonefile is CloneFile with the copy strategy of
// a 1 GiB image holding 300 MiB; /raw is `cp --sparse=always` of the
// same file, and /raw-fsync the same followed by `sync FILE`, since
// CloneFile makes its copy durable before renaming it into place.
func BenchmarkOverlayCopy(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "rootfs.ext4")
	rootfsLike(b, src)
	ctx := context.Background()
	b.Run("clonefile", func(b *testing.B) {
		cloneBench(b, dir, func(dst string) error { return CloneFile(ctx, src, dst, OverlayCopy) })
	})
	b.Run("raw", func(b *testing.B) {
		cloneBench(b, dir, cp("--sparse=always", src))
	})
	b.Run("raw-fsync", func(b *testing.B) {
		cloneBench(b, dir, func(dst string) error {
			if err := cp("--sparse=always", src)(dst); err != nil {
				return err
			}
			return exec.Command("sync", dst).Run()
		})
	})
}

// BenchmarkOverlayReflink/clonefile is CloneFile with the reflink
// strategy on XFS (a loop mount: needs root); /raw is
// `cp --reflink=always` of the same file.
func BenchmarkOverlayReflink(b *testing.B) {
	dir := loopMount(b, "xfs", 2<<30)
	src := filepath.Join(dir, "rootfs.ext4")
	rootfsLike(b, src)
	ctx := context.Background()
	b.Run("clonefile", func(b *testing.B) {
		cloneBench(b, dir, func(dst string) error { return CloneFile(ctx, src, dst, OverlayReflink) })
	})
	b.Run("raw", func(b *testing.B) {
		cloneBench(b, dir, cp("--reflink=always", src))
	})
}

// BenchmarkWorkDisk/build is BuildWorkDisk of an 8 GiB work disk from a
// small seed, two file sync entries (a file, a directory of 100 files)
// and the three key files; /raw is `mkfs.ext4 -d` of the very tree
// BuildWorkDisk stages, made once beforehand.
func BenchmarkWorkDisk(b *testing.B) {
	base := b.TempDir()
	seed, home := filepath.Join(base, "seed"), filepath.Join(base, "home")
	for dir, files := range map[string]map[string]int{
		seed: {".bashrc": 3500, ".profile": 160, ".config/app.conf": 100},
		home: {".gitconfig": 300},
	} {
		for name, size := range files {
			p := filepath.Join(dir, name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	for i := range 100 {
		p := filepath.Join(home, "proj", fmt.Sprintf("d%d", i%10), fmt.Sprintf("f%d.go", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, make([]byte, 4000), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	spec := WorkDiskSpec{
		SizeBytes: model.DefaultWorkDiskSize, SeedDir: seed, Home: home,
		Sync: []model.FileSyncEntry{{Host: "~/.gitconfig", Guest: "~/.gitconfig"}, {Host: "~/proj", Guest: "~/proj"}},
		Files: []File{
			{GuestPath: guestapi.AuthorizedKeysPath, Data: make([]byte, 100), Mode: 0o600},
			{GuestPath: guestapi.HostKeyPath, Data: make([]byte, 400), Mode: 0o600},
			{GuestPath: guestapi.HostKeyPath + ".pub", Data: make([]byte, 100), Mode: 0o644},
		},
	}
	ctx := context.Background()
	out := filepath.Join(base, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		b.Fatal(err)
	}
	b.Run("build", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			spec := spec
			spec.Path = filepath.Join(out, fmt.Sprintf("work-%d.ext4", i))
			if _, err := BuildWorkDisk(ctx, spec); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			os.Remove(spec.Path)
			b.StartTimer()
		}
	})
	b.Run("raw", func(b *testing.B) {
		s, err := newStage(base)
		if err != nil {
			b.Fatal(err)
		}
		defer s.remove()
		if err := s.fill(ctx, spec, &WorkDiskResult{}); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			img := filepath.Join(out, fmt.Sprintf("raw-%d.ext4", i))
			argv := append([]string{"mkfs.ext4", "-q", "-F", "-L", WorkDiskLabel}, MkfsLazyInit...)
			if _, err := run(ctx, append(argv, "-d", s.dir, img, fmt.Sprintf("%dk", spec.SizeBytes/1024))...); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			os.Remove(img)
			b.StartTimer()
		}
	})
}
