package initramfs

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"banger/internal/guestapi"
)

// fakeModule is what a module file holds in these tests: enough to look
// like an ELF object.
func fakeModule(name string) []byte {
	return []byte("\x7fELF\x02\x01\x01 fake module " + name + strings.Repeat(".", len(name)))
}

func xzBytes(t *testing.T, data []byte) []byte {
	var buf bytes.Buffer
	zw, err := xz.WriterConfig{CheckSum: xz.CRC32, DictCap: 1 << 16}.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstdBytes(t *testing.T, data []byte) []byte {
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	return zw.EncodeAll(data, nil)
}

func gzipBytes(t *testing.T, data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fakeKernel writes an init program and a modules directory with one
// module in each format, and returns the spec that packs them.
func fakeKernel(t *testing.T) Spec {
	t.Helper()
	dir := t.TempDir()
	init := filepath.Join(dir, "banger-guest")
	if err := os.WriteFile(init, []byte("\x7fELF static guest program"), 0o755); err != nil {
		t.Fatal(err)
	}
	modulesDir := filepath.Join(dir, "lib", "modules", "6.1.0-test")
	files := map[string][]byte{
		"kernel/drivers/virtio/virtio.ko":         fakeModule("virtio"),
		"kernel/drivers/virtio/virtio_ring.ko.xz": xzBytes(t, fakeModule("virtio_ring")),
		"kernel/lib/crc16.ko.zst":                 zstdBytes(t, fakeModule("crc16")),
		"kernel/fs/mbcache.ko.gz":                 gzipBytes(t, fakeModule("mbcache")),
		"kernel/fs/ext4/ext4.ko.xz":               xzBytes(t, fakeModule("ext4")),
	}
	for name, data := range files {
		p := filepath.Join(modulesDir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return Spec{
		Init:       init,
		ModulesDir: modulesDir,
		Modules: []string{
			"kernel/drivers/virtio/virtio.ko",
			"kernel/drivers/virtio/virtio_ring.ko.xz",
			"kernel/lib/crc16.ko.zst",
			"kernel/fs/mbcache.ko.gz",
			"kernel/fs/ext4/ext4.ko.xz",
		},
		Release: "6.1.0-test",
	}
}

func build(t *testing.T, spec Spec) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Build(&buf, spec); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBuildLayout(t *testing.T) {
	archive := build(t, fakeKernel(t))
	entries := readAll(t, archive)

	type summary struct {
		mode fs.FileMode
		data string
	}
	got := map[string]summary{}
	var order []string
	for _, e := range entries {
		got[e.Name] = summary{e.Mode, e.data}
		order = append(order, e.Name)
		if e.UID != 0 || e.GID != 0 || e.ModTime != 0 {
			t.Errorf("%s: uid %d gid %d mtime %d, want all 0", e.Name, e.UID, e.GID, e.ModTime)
		}
	}
	dir := fs.ModeDir | 0o755
	mod := func(name string) summary { return summary{0o644, string(fakeModule(name))} }
	want := map[string]summary{
		"dev":                                   {dir, ""},
		"dev/console":                           {fs.ModeDevice | fs.ModeCharDevice | 0o600, ""},
		"proc":                                  {fs.ModeDir | 0o555, ""},
		"sys":                                   {fs.ModeDir | 0o555, ""},
		"newroot":                               {dir, ""},
		"etc":                                   {dir, ""},
		"etc/banger":                            {dir, ""},
		"init":                                  {0o755, "\x7fELF static guest program"},
		"lib":                                   {dir, ""},
		"lib/modules":                           {dir, ""},
		"lib/modules/6.1.0-test":                {dir, ""},
		"lib/modules/6.1.0-test/kernel":         {dir, ""},
		"lib/modules/6.1.0-test/kernel/drivers": {dir, ""},
		"lib/modules/6.1.0-test/kernel/drivers/virtio":                {dir, ""},
		"lib/modules/6.1.0-test/kernel/drivers/virtio/virtio.ko":      mod("virtio"),
		"lib/modules/6.1.0-test/kernel/drivers/virtio/virtio_ring.ko": mod("virtio_ring"),
		"lib/modules/6.1.0-test/kernel/lib":                           {dir, ""},
		"lib/modules/6.1.0-test/kernel/lib/crc16.ko":                  mod("crc16"),
		"lib/modules/6.1.0-test/kernel/fs":                            {dir, ""},
		"lib/modules/6.1.0-test/kernel/fs/mbcache.ko":                 mod("mbcache"),
		"lib/modules/6.1.0-test/kernel/fs/ext4":                       {dir, ""},
		"lib/modules/6.1.0-test/kernel/fs/ext4/ext4.ko":               mod("ext4"),
		"etc/banger/modules.load": {0o644, strings.Join([]string{
			"/lib/modules/6.1.0-test/kernel/drivers/virtio/virtio.ko",
			"/lib/modules/6.1.0-test/kernel/drivers/virtio/virtio_ring.ko",
			"/lib/modules/6.1.0-test/kernel/lib/crc16.ko",
			"/lib/modules/6.1.0-test/kernel/fs/mbcache.ko",
			"/lib/modules/6.1.0-test/kernel/fs/ext4/ext4.ko",
		}, "\n") + "\n"},
	}
	if len(got) != len(entries) {
		t.Errorf("duplicate names in %q", order)
	}
	for name, w := range want {
		if g, ok := got[name]; !ok {
			t.Errorf("%s missing", name)
		} else if g != w {
			t.Errorf("%s: mode %v, data %q; want %v, %q", name, g.mode, g.data, w.mode, w.data)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected entry %s", name)
		}
	}
	// The paths the contract names are where the entries are.
	if got[strings.TrimPrefix(guestapi.InitPath, "/")].mode != 0o755 || got[strings.TrimPrefix(guestapi.ModulesList, "/")].data == "" {
		t.Error("init or the modules list is not where package guestapi says")
	}
}

func TestBuildNoModules(t *testing.T) {
	spec := fakeKernel(t)
	spec.Modules, spec.ModulesDir, spec.Release = nil, "", ""
	var names []string
	for _, e := range readAll(t, build(t, spec)) {
		names = append(names, e.Name)
		if e.Name == "etc/banger/modules.load" && e.data != "" {
			t.Errorf("modules.load = %q, want empty", e.data)
		}
	}
	if got := strings.Join(names, " "); got != "dev proc sys newroot etc etc/banger dev/console init etc/banger/modules.load" {
		t.Errorf("entries = %s", got)
	}
}

func TestBuildDeterministic(t *testing.T) {
	spec := fakeKernel(t)
	first := build(t, spec)
	// Different timestamps on the inputs change nothing.
	later := time.Now().Add(time.Hour)
	filepath.WalkDir(filepath.Dir(spec.Init), func(p string, _ fs.DirEntry, _ error) error {
		return os.Chtimes(p, later, later)
	})
	if second := build(t, spec); !bytes.Equal(first, second) {
		t.Error("two builds of the same spec differ")
	}

	spec.Gzip = true
	gz1, gz2 := build(t, spec), build(t, spec)
	if !bytes.Equal(gz1, gz2) {
		t.Error("two gzip builds of the same spec differ")
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz1))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plain, first) {
		t.Error("the gzip build does not decompress to the plain one")
	}
}

func TestBuildFile(t *testing.T) {
	spec := fakeKernel(t)
	dst := filepath.Join(t.TempDir(), "initrd.img")
	if err := BuildFile(dst, spec); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(got, build(t, spec)) {
		t.Fatalf("BuildFile wrote %d bytes (%v), not what Build writes", len(got), err)
	}

	spec.Modules = append(spec.Modules, "kernel/missing.ko")
	failed := filepath.Join(filepath.Dir(dst), "failed.img")
	if err := BuildFile(failed, spec); err == nil {
		t.Fatal("BuildFile with a missing module: no error")
	}
	if entries, _ := os.ReadDir(filepath.Dir(dst)); len(entries) != 1 {
		t.Errorf("a failed BuildFile left %d files", len(entries)-1)
	}
}

func TestBuildErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(dir string, s *Spec)
		want   string
	}{
		{"no init", func(_ string, s *Spec) { s.Init = "" }, "no init program"},
		{"missing init", func(_ string, s *Spec) { s.Init += ".missing" }, "no such file"},
		{"init is a directory", func(dir string, s *Spec) { s.Init = dir }, "not a regular file"},
		{"modules without release", func(_ string, s *Spec) { s.Release = "" }, "without their directory and kernel release"},
		{"release with a slash", func(_ string, s *Spec) { s.Release = "6.1/x" }, "is not a directory name"},
		{"module escaping the directory", func(_ string, s *Spec) { s.Modules = []string{"../evil.ko"} }, `module "../evil.ko" is not a clean relative path`},
		{"module that is not a .ko", func(_ string, s *Spec) { s.Modules = []string{"kernel/x.txt"} }, "is not a clean relative path"},
		{"missing module", func(_ string, s *Spec) { s.Modules = []string{"kernel/missing.ko"} }, "no such file"},
		{"module that is not ELF", func(_ string, s *Spec) {
			os.WriteFile(filepath.Join(s.ModulesDir, "bad.ko.gz"), gzipBytes(t, []byte("text")), 0o644)
			s.Modules = []string{"bad.ko.gz"}
		}, "bad.ko.gz is not an ELF object"},
		{"corrupt xz module", func(_ string, s *Spec) {
			os.WriteFile(filepath.Join(s.ModulesDir, "bad.ko.xz"), []byte("\xfd7zXZ\x00garbage"), 0o644)
			s.Modules = []string{"bad.ko.xz"}
		}, "bad.ko.xz"},
		{"the same module twice", func(_ string, s *Spec) {
			s.Modules = append(s.Modules, "kernel/fs/ext4/ext4.ko.xz")
		}, "already in the archive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := fakeKernel(t)
			tc.change(filepath.Dir(spec.Init), &spec)
			err := Build(io.Discard, spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
