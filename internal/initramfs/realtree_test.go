package initramfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"banger/internal/kernel"
)

// TestRealModules packs the default guest modules of a real Debian
// kernel tree, when the machine has one (CI does not).
func TestRealModules(t *testing.T) {
	const release = "6.1.0-50-amd64"
	modulesDir := filepath.Join("/tmp/mmd/tree/lib/modules", release)
	if _, err := os.Stat(filepath.Join(modulesDir, "modules.dep")); err != nil {
		t.Skipf("no Debian kernel tree: %v", err)
	}
	mods, err := kernel.ResolveModules(modulesDir, kernel.DefaultGuestModules())
	if err != nil {
		t.Fatal(err)
	}
	init := filepath.Join(t.TempDir(), "init")
	os.WriteFile(init, []byte("#!/bin/sh\n"), 0o755)
	archive := build(t, Spec{Init: init, ModulesDir: modulesDir, Modules: mods, Release: release})
	for _, e := range readAll(t, archive) {
		if e.Name != "etc/banger/modules.load" {
			continue
		}
		lines := strings.Split(strings.TrimSuffix(e.data, "\n"), "\n")
		if len(lines) != len(mods) {
			t.Fatalf("modules.load lists %d modules, want %d", len(lines), len(mods))
		}
		for i, l := range lines {
			want := "/lib/modules/" + release + "/" + mods[i]
			if l != want {
				t.Errorf("line %d = %s, want %s", i, l, want)
			}
		}
		return
	}
	t.Fatal("no modules.load")
}
