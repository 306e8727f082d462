package kernel

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// A Debian bookworm tree made with mmdebstrap, with its kernel package
// installed. Developers' machines may have one; CI does not, and the
// tests above cover the same code on synthetic input.
const (
	realTree    = "/tmp/mmd/tree"
	realRelease = "6.1.0-50-amd64"
)

func realKernel(t *testing.T) (vmlinuz, modulesDir string) {
	t.Helper()
	vmlinuz = filepath.Join(realTree, "boot", "vmlinuz-"+realRelease)
	modulesDir = filepath.Join(realTree, "lib", "modules", realRelease)
	for _, p := range []string{vmlinuz, filepath.Join(modulesDir, "modules.dep")} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("no Debian kernel tree: %v", err)
		}
	}
	return vmlinuz, modulesDir
}

func TestRealKernelExtract(t *testing.T) {
	vmlinuz, _ := realKernel(t)
	if testing.Short() {
		t.Skip("decompressing a 66 MB kernel takes seconds")
	}
	bz, err := Inspect(vmlinuz)
	if err != nil {
		t.Fatal(err)
	}
	if bz.Format != FormatBzImage || bz.Compression != CompressionXZ || bz.Release != realRelease {
		t.Errorf("Inspect(vmlinuz) = %+v", bz)
	}

	dst := filepath.Join(t.TempDir(), "vmlinux")
	c, err := ExtractVmlinuxFile(vmlinuz, dst)
	if err != nil || c != CompressionXZ {
		t.Fatalf("ExtractVmlinuxFile = %q, %v", c, err)
	}
	elfInfo, err := Inspect(dst)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("bzImage: %+v", bz)
	t.Logf("vmlinux: %+v", elfInfo)
	if elfInfo.Format != FormatELF || !elfInfo.PVH || elfInfo.PVHEntry == 0 {
		t.Errorf("vmlinux: %+v, want an ELF with a PVH entry", elfInfo)
	}
	// The header's version and the ELF's banner describe the same
	// build, though the banner adds the compiler.
	if elfInfo.Release != bz.Release || !strings.Contains(elfInfo.Version, "#1 SMP") {
		t.Errorf("vmlinux version %q does not match the bzImage's %q", elfInfo.Version, bz.Version)
	}
}

func TestRealKernelModules(t *testing.T) {
	_, modulesDir := realKernel(t)
	got, err := ResolveModules(modulesDir, DefaultGuestModules())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, defaultOrder) {
		t.Errorf("DefaultGuestModules resolve to\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(defaultOrder, "\n"))
	}
	for _, m := range got {
		if _, err := os.Stat(filepath.Join(modulesDir, m)); err != nil {
			t.Error(err)
		}
	}
	if need, err := NeedsInitramfs(modulesDir, DefaultGuestModules()); err != nil || !need {
		t.Errorf("NeedsInitramfs = %v, %v; Debian builds virtio as modules", need, err)
	}
}
