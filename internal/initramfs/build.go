package initramfs

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"banger/internal/guestapi"
)

// Spec is what goes into a guest's initramfs.
type Spec struct {
	// Init is the host path of the guest program, installed as /init.
	Init string
	// ModulesDir is the host directory holding the kernel's modules
	// (an image's /lib/modules/<release>), and Modules the ones to
	// load, relative to it and in load order, as kernel.ResolveModules
	// returns them.
	ModulesDir string
	Modules    []string
	// Release is the kernel release; modules go under
	// /lib/modules/<release>/ at their relative paths.
	Release string
	// Gzip compresses the archive. The kernel takes an uncompressed
	// newc archive as well, and reads it faster.
	Gzip bool
}

// Directories every initramfs has: the mount points /init uses.
var baseDirs = []struct {
	name string
	perm os.FileMode
}{
	{"/dev", 0o755},
	{"/proc", 0o555},
	{"/sys", 0o555},
	{"/newroot", 0o755},
	{path.Dir(guestapi.ModulesList), 0o755},
}

// maxModuleSize bounds a decompressed module; the largest Debian
// modules are a few MB.
const maxModuleSize = 256 << 20

// Build writes the initramfs spec describes to w: the base directories,
// /dev/console (the kernel opens it for /init's stdin, stdout and
// stderr before anything can mount devtmpfs), /init, the modules
// decompressed to plain .ko files so that /init can load them with
// finit_module whatever the kernel's own decompression support, and
// their absolute paths in load order in guestapi.ModulesList. The same
// spec and files give the same bytes.
func Build(w io.Writer, spec Spec) error {
	if err := spec.validate(); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	var out io.Writer = bw
	var zw *gzip.Writer
	if spec.Gzip {
		zw = gzip.NewWriter(bw) // zero ModTime and no name: reproducible
		out = zw
	}
	cw := NewWriter(out)
	if err := spec.write(cw); err != nil {
		return err
	}
	if err := cw.Close(); err != nil {
		return err
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// BuildFile writes the initramfs to dst atomically: dst appears,
// complete, only when Build succeeds.
func BuildFile(dst string, spec Spec) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := Build(tmp, spec); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

func (s Spec) validate() error {
	if s.Init == "" {
		return errors.New("initramfs: no init program given")
	}
	if len(s.Modules) > 0 && (s.ModulesDir == "" || s.Release == "") {
		return errors.New("initramfs: modules given without their directory and kernel release")
	}
	if s.Release != "" && (s.Release == "." || s.Release == ".." || strings.ContainsAny(s.Release, "/\x00")) {
		return fmt.Errorf("initramfs: kernel release %q is not a directory name", s.Release)
	}
	for _, m := range s.Modules {
		if !filepath.IsLocal(m) || path.Clean(m) != m || moduleSuffix(m) == "" {
			return fmt.Errorf("initramfs: module %q is not a clean relative path to a .ko, .ko.xz, .ko.zst or .ko.gz file", m)
		}
	}
	return nil
}

func (s Spec) write(cw *Writer) error {
	for _, d := range baseDirs {
		if err := cw.MkdirAll(d.name, d.perm); err != nil {
			return err
		}
	}
	if err := cw.CharDevice("/dev/console", 0o600, 5, 1); err != nil {
		return err
	}
	if err := s.writeInit(cw); err != nil {
		return err
	}

	var list strings.Builder
	if s.Release != "" {
		root := path.Join("/lib/modules", s.Release)
		if err := cw.MkdirAll(root, 0o755); err != nil {
			return err
		}
		for _, m := range s.Modules {
			data, err := readModule(filepath.Join(s.ModulesDir, filepath.FromSlash(m)))
			if err != nil {
				return err
			}
			dst := path.Join(root, strings.TrimSuffix(m, moduleSuffix(m))+".ko")
			if err := cw.MkdirAll(path.Dir(dst), 0o755); err != nil {
				return err
			}
			if err := cw.WriteFile(dst, data, 0o644); err != nil {
				return err
			}
			list.WriteString(dst + "\n")
		}
	}
	return cw.WriteFile(guestapi.ModulesList, []byte(list.String()), 0o644)
}

func (s Spec) writeInit(cw *Writer) error {
	f, err := os.Open(s.Init)
	if err != nil {
		return fmt.Errorf("initramfs: init program: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("initramfs: init program: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("initramfs: init program %s is not a regular file", s.Init)
	}
	return cw.CopyFile(guestapi.InitPath, f, st.Size(), 0o755)
}

// moduleSuffix returns the module file suffix of name (".ko",
// ".ko.xz", ...), or "" when it is not a module file.
func moduleSuffix(name string) string {
	for _, suffix := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(name, suffix) {
			return suffix
		}
	}
	return ""
}

// readModule reads a module file, decompressing it by its suffix, and
// checks that the result is an ELF object.
func readModule(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("initramfs: kernel module: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	switch moduleSuffix(p) {
	case ".ko.xz":
		zr, err := xz.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("initramfs: kernel module %s: %w", p, err)
		}
		r = zr
	case ".ko.zst":
		zr, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("initramfs: kernel module %s: %w", p, err)
		}
		defer zr.Close()
		r = zr
	case ".ko.gz":
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("initramfs: kernel module %s: %w", p, err)
		}
		r = zr
	}
	data, err := io.ReadAll(io.LimitReader(r, maxModuleSize+1))
	if err != nil {
		return nil, fmt.Errorf("initramfs: kernel module %s: %w", p, err)
	}
	if len(data) > maxModuleSize {
		return nil, fmt.Errorf("initramfs: kernel module %s: more than %d bytes", p, maxModuleSize)
	}
	if !bytes.HasPrefix(data, []byte("\x7fELF")) {
		return nil, fmt.Errorf("initramfs: kernel module %s is not an ELF object", p)
	}
	return data, nil
}
