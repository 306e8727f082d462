package kernel

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// testdata/modules holds modules.dep and friends: the lines of a real
// Debian 6.1 kernel's files that banger's modules touch, plus made-up
// modules for the cases the real ones do not cover.
const fixtureModules = "testdata/modules"

// defaultOrder is what DefaultGuestModules resolves to on a Debian 6.1
// kernel (and on the fixture, which copies its lines).
var defaultOrder = []string{
	"kernel/drivers/virtio/virtio.ko",
	"kernel/drivers/virtio/virtio_ring.ko",
	"kernel/drivers/virtio/virtio_mmio.ko",
	"kernel/drivers/virtio/virtio_pci_modern_dev.ko",
	"kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
	"kernel/drivers/virtio/virtio_pci.ko",
	"kernel/drivers/block/virtio_blk.ko",
	"kernel/net/core/failover.ko",
	"kernel/drivers/net/net_failover.ko",
	"kernel/drivers/net/virtio_net.ko",
	"kernel/crypto/crc32c_generic.ko", // jbd2's soft dependency, through the crypto-crc32c alias
	"kernel/fs/jbd2/jbd2.ko",
	"kernel/fs/mbcache.ko",
	"kernel/lib/crc16.ko",
	"kernel/fs/ext4/ext4.ko",
	"kernel/net/vmw_vsock/vsock.ko",
	"kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko",
	"kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko",
}

func TestResolveModules(t *testing.T) {
	for _, tc := range []struct {
		name   string
		wanted []string
		want   []string
	}{
		{"defaults", DefaultGuestModules(), defaultOrder},
		{
			name:   "diamond: the shared dependency once, first",
			wanted: []string{"top"},
			want:   []string{"kernel/test/diamond/base.ko", "kernel/test/diamond/right.ko", "kernel/test/diamond/left.ko", "kernel/test/diamond/top.ko"},
		},
		{
			name:   "'-' and '_' are equal, compressed modules keep their names",
			wanted: []string{"dash_name", "under-score"},
			want:   []string{"kernel/test/names/under_score.ko.zst", "kernel/test/names/dash-name.ko.xz"},
		},
		{
			name:   "built-in modules are skipped",
			wanted: []string{"rng_core", "virtio_blk", "binfmt-script"},
			want:   []string{"kernel/drivers/virtio/virtio.ko", "kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/block/virtio_blk.ko"},
		},
		{
			name:   "each module once",
			wanted: []string{"virtio_blk", "virtio-blk", "virtio", "virtio_mmio"},
			want:   []string{"kernel/drivers/virtio/virtio.ko", "kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/block/virtio_blk.ko", "kernel/drivers/virtio/virtio_mmio.ko"},
		},
		{
			name:   "softdep through an alias prefers *_generic",
			wanted: []string{"libcrc32c"},
			want:   []string{"kernel/crypto/crc32c_generic.ko", "kernel/lib/libcrc32c.ko"},
		},
		{
			// helper-impl matches two patterns, neither *_generic: the
			// first line wins. The other pre: names are unprovided or
			// built in, and post: is not banger's business.
			name:   "softdep without a generic provider, missing and built-in softdeps",
			wanted: []string{"needs-helper"},
			want:   []string{"kernel/test/soft/helper_impl_b.ko", "kernel/test/diamond/base.ko", "kernel/test/soft/needs-helper.ko"},
		},
		{
			name:   "a loop of soft dependencies is broken",
			wanted: []string{"loop_a"},
			want:   []string{"kernel/test/soft/loop_b.ko", "kernel/test/soft/loop_a.ko"},
		},
		{"nothing wanted", nil, nil},
		{"only built-ins", []string{"rng-core"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveModules(fixtureModules, tc.wanted)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ResolveModules(%q) =\n%s\nwant\n%s", tc.wanted, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestResolveModulesErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		wanted []string
		want   string
	}{
		{"missing modules are all named", []string{"ext4", "no_such_module", "virtio_9p"}, "kernel modules no_such_module, virtio_9p: neither in testdata/modules/modules.dep nor in modules.builtin"},
		{"dependency without a line", []string{"orphan"}, "kernel module orphan depends on gone, which has no line in modules.dep"},
		{"cycle", []string{"cyc_a"}, "kernel module dependency cycle: cyc_a -> cyc_b -> cyc_a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ResolveModules(fixtureModules, tc.wanted)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestLoadModuleIndexFiles(t *testing.T) {
	// Only modules.dep is required.
	dir := t.TempDir()
	if _, err := LoadModuleIndex(dir); err == nil || !strings.Contains(err.Error(), "modules.dep") {
		t.Fatalf("LoadModuleIndex without modules.dep: %v", err)
	}
	dep := "kernel/a.ko: kernel/b.ko\nkernel/b.ko:\n"
	if err := os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(dep), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ResolveModules(dir, []string{"a"})
	if err != nil || !reflect.DeepEqual(got, []string{"kernel/b.ko", "kernel/a.ko"}) {
		t.Fatalf("ResolveModules = %q, %v", got, err)
	}

	if err := os.WriteFile(filepath.Join(dir, "modules.dep"), []byte("kernel/a.ko: b\nno colon here\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadModuleIndex(dir); err == nil || !strings.Contains(err.Error(), "modules.dep:2: no ':'") {
		t.Fatalf("malformed modules.dep: %v", err)
	}
}

func TestModuleIndexLookups(t *testing.T) {
	ix, err := LoadModuleIndex(fixtureModules)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name            string
		module, builtin bool
	}{
		{"ext4", true, false},
		{"crc32c-intel", true, false},
		{"rng_core", false, true},
		{"rng-core", false, true},
		{"nope", false, false},
	} {
		if got := ix.IsModule(tc.name); got != tc.module {
			t.Errorf("IsModule(%q) = %v", tc.name, got)
		}
		if got := ix.IsBuiltin(tc.name); got != tc.builtin {
			t.Errorf("IsBuiltin(%q) = %v", tc.name, got)
		}
	}
	for alias, want := range map[string]string{
		"crypto-crc32c":             "crc32c_generic",
		"crc32c_intel":              "crc32c_intel",  // a module name is taken as it is
		"helper-impl-7":             "helper_impl_a", // [0-9] keeps its '-' inside brackets
		"virtio:d00000001v00001AF4": "virtio_net",
	} {
		if got, ok := ix.lookupSoft(alias); !ok || got != want {
			t.Errorf("lookupSoft(%q) = %q, %v; want %q", alias, got, ok, want)
		}
	}
}

func TestNeedsInitramfs(t *testing.T) {
	for _, tc := range []struct {
		wanted []string
		want   bool
	}{
		{DefaultGuestModules(), true},
		{[]string{"rng_core", "binfmt_script"}, false},
		{nil, false},
		{[]string{"rng_core", "ext4"}, true},
	} {
		got, err := NeedsInitramfs(fixtureModules, tc.wanted)
		if err != nil || got != tc.want {
			t.Errorf("NeedsInitramfs(%q) = %v, %v; want %v", tc.wanted, got, err, tc.want)
		}
	}
	if _, err := NeedsInitramfs(fixtureModules, []string{"missing"}); err == nil {
		t.Error("NeedsInitramfs of a missing module: no error")
	}
}
