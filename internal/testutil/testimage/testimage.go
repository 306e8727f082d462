// Package testimage gives tests a real banger image, built from Debian's
// packages with the real image builder once per recipe and kept in the
// machine's temp directory (or $BANGER_TEST_CACHE), so the many tests
// that boot guests share one build. A lock serialises test packages
// running in parallel; the cache key includes the guest program, so a
// change to it rebuilds.
package testimage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"banger/internal/imagebuild"
	"banger/internal/lockfile"
)

// Image is a built test image.
type Image struct {
	Dir      string
	Rootfs   string
	Kernel   string
	Initrd   string // "" when the kernel needs none
	WorkSeed string
	GuestBin string // the banger-guest built for it
	Build    imagebuild.Artifacts
}

// Recipe is what tests boot: the default image.
var Recipe = imagebuild.Recipe{Name: "test"}

// CacheDir is where images, the package cache and the guest binary live.
func CacheDir() string {
	if d := os.Getenv("BANGER_TEST_CACHE"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "banger-test-cache")
}

// AptCache is the package cache test builds share. It is where a bangerd
// run with XDG_CACHE_HOME=CacheDir() keeps its own, so daemons under test
// reuse the downloads too; hold Lock while such a daemon builds.
func AptCache() string { return filepath.Join(CacheDir(), "banger", "apt-archives") }

// Lock serialises image builds between test processes: they share the
// package cache.
func Lock(t testing.TB) func() {
	t.Helper()
	if err := os.MkdirAll(CacheDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	lock, err := lockfile.Acquire(ctx, filepath.Join(CacheDir(), "build.lock"))
	if err != nil {
		t.Fatal(err)
	}
	return func() { lock.Release() }
}

// Require skips the test unless an image can be built here: root (for
// mmdebstrap's root mode; tests do not set up subordinate ids), mmdebstrap
// and mkfs.ext4.
func Require(t testing.TB) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("building a test image needs root (mmdebstrap root mode)")
	}
	for _, tool := range []string{"mmdebstrap", "mkfs.ext4"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("building a test image needs %s", tool)
		}
	}
}

var (
	once   sync.Map // key → *result, so one test binary builds once
	goOnce sync.Once
	gobin  string
	goErr  error
)

type result struct {
	once sync.Once
	img  Image
	err  error
}

// Get returns the test image, building it if no earlier test (in this
// process or another) has.
func Get(t testing.TB) Image {
	t.Helper()
	Require(t)
	guestBin, err := GuestBinary()
	if err != nil {
		t.Fatalf("build banger-guest: %v", err)
	}
	sum, err := fileHash(guestBin)
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := Recipe.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	key := r.Hash() + "-" + sum[:12]
	v, _ := once.LoadOrStore(key, &result{})
	res := v.(*result)
	res.once.Do(func() { res.img, res.err = build(t, key, r, guestBin) })
	if res.err != nil {
		t.Fatalf("test image: %v", res.err)
	}
	return res.img
}

func build(t testing.TB, key string, r imagebuild.Recipe, guestBin string) (Image, error) {
	cache := CacheDir()
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return Image{}, err
	}
	unlock := Lock(t)
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	dir := filepath.Join(cache, "images", key)
	if img, err := load(dir, guestBin); err == nil {
		t.Logf("test image: cached at %s", dir)
		return img, nil
	}
	b := &imagebuild.Builder{
		ImagesDir: filepath.Join(cache, "images"),
		CacheDir:  AptCache(),
		Guest:     imagebuild.BangerGuest(guestBin),
	}
	os.RemoveAll(dir)
	start := time.Now()
	t.Logf("test image: building %s (a few minutes the first time)", dir)
	if _, err := b.Build(ctx, key, r, logReporter{t}); err != nil {
		return Image{}, err
	}
	t.Logf("test image: built in %s", time.Since(start).Round(time.Second))
	return load(dir, guestBin)
}

func load(dir, guestBin string) (Image, error) {
	data, err := os.ReadFile(filepath.Join(dir, "build.json"))
	if err != nil {
		return Image{}, err
	}
	var art imagebuild.Artifacts
	if err := json.Unmarshal(data, &art); err != nil {
		return Image{}, err
	}
	return Image{Dir: dir, Rootfs: art.RootfsPath, Kernel: art.KernelPath, Initrd: art.InitrdPath,
		WorkSeed: art.WorkSeedPath, GuestBin: guestBin, Build: art}, nil
}

type logReporter struct{ t testing.TB }

func (l logReporter) Stage(name string)      { l.t.Logf("test image: %s", name) }
func (l logReporter) Detail(string, float64) {}

// GuestBinary builds cmd/banger-guest (static, pure Go) once per test
// binary and returns its path.
func GuestBinary() (string, error) {
	goOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			goErr = err
			return
		}
		dir := filepath.Join(CacheDir(), "bin")
		if err = os.MkdirAll(dir, 0o755); err != nil {
			goErr = err
			return
		}
		tmp, err := os.MkdirTemp(dir, "build")
		if err != nil {
			goErr = err
			return
		}
		defer os.RemoveAll(tmp)
		out := filepath.Join(tmp, "banger-guest")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./cmd/banger-guest")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if o, err := cmd.CombinedOutput(); err != nil {
			goErr = fmt.Errorf("go build ./cmd/banger-guest: %v\n%s", err, o)
			return
		}
		// Keep it under its content hash: the same source reuses the
		// same file, and test binaries never race on one path.
		sum, err := fileHash(out)
		if err != nil {
			goErr = err
			return
		}
		gobin = filepath.Join(dir, "banger-guest-"+sum[:16])
		if _, err := os.Stat(gobin); err == nil {
			return
		}
		goErr = os.Rename(out, gobin)
	})
	return gobin, goErr
}

// moduleRoot finds the directory of banger's go.mod above the test's
// working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.HasPrefix(string(data), "module banger") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no banger go.mod above the working directory")
		}
		dir = parent
	}
}

func fileHash(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
