package kernel

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// DefaultGuestModules returns the modules banger loads in a guest of a
// Debian-style kernel, which builds all of these as modules: the virtio
// transports for -M microvm and Firecracker (virtio_mmio) and for pc/q35
// (virtio_pci), the disk and network drivers, ext4 with crc32c_generic
// (mkfs.ext4 enables metadata checksums, and the mount fails without a
// crc32c driver), and the vsock transport. Their dependencies come from
// the kernel's modules.dep.
func DefaultGuestModules() []string {
	return []string{
		"virtio_mmio",
		"virtio_pci",
		"virtio_blk",
		"virtio_net",
		"ext4",
		"crc32c_generic",
		"vmw_vsock_virtio_transport",
	}
}

// ModuleIndex is what depmod wrote about one kernel's modules: the
// dependency lines of modules.dep, the built-in list of modules.builtin,
// the soft dependencies of modules.softdep and the aliases of
// modules.alias.
type ModuleIndex struct {
	dir     string
	paths   map[string]string   // module name → path relative to dir
	deps    map[string][]string // module name → dependency names, as modules.dep lists them
	builtin map[string]bool
	softPre map[string][]string // module name → "pre:" soft dependencies (names or aliases)
	aliases []moduleAlias       // in file order
}

type moduleAlias struct {
	pattern string // normalized, may hold fnmatch wildcards
	module  string
}

// LoadModuleIndex reads the depmod files in modulesDir
// (/lib/modules/<release>). modules.dep is required; the others are
// read when present.
func LoadModuleIndex(modulesDir string) (*ModuleIndex, error) {
	ix := &ModuleIndex{
		dir:     modulesDir,
		paths:   map[string]string{},
		deps:    map[string][]string{},
		builtin: map[string]bool{},
		softPre: map[string][]string{},
	}
	if err := ix.readFile("modules.dep", true, ix.parseDep); err != nil {
		return nil, err
	}
	if err := ix.readFile("modules.builtin", false, ix.parseBuiltin); err != nil {
		return nil, err
	}
	if err := ix.readFile("modules.softdep", false, ix.parseSoftdep); err != nil {
		return nil, err
	}
	if err := ix.readFile("modules.alias", false, ix.parseAlias); err != nil {
		return nil, err
	}
	return ix, nil
}

// readFile feeds each non-blank, non-comment line of one depmod file to
// parse.
func (ix *ModuleIndex) readFile(name string, required bool, parse func(line string) error) error {
	p := filepath.Join(ix.dir, name)
	f, err := os.Open(p)
	if err != nil {
		if !required && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if err := parse(line); err != nil {
			return fmt.Errorf("%s:%d: %w", p, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	return nil
}

// parseDep reads "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko ...".
func (ix *ModuleIndex) parseDep(line string) error {
	mod, deps, ok := strings.Cut(line, ":")
	if !ok {
		return errors.New("no ':' in modules.dep line")
	}
	name := moduleName(mod)
	if _, dup := ix.paths[name]; dup {
		return nil // depmod's first entry wins, as for modprobe
	}
	ix.paths[name] = mod
	var names []string
	for _, d := range strings.Fields(deps) {
		names = append(names, moduleName(d))
	}
	ix.deps[name] = names
	return nil
}

// parseBuiltin reads one path per line.
func (ix *ModuleIndex) parseBuiltin(line string) error {
	ix.builtin[moduleName(line)] = true
	return nil
}

// parseSoftdep reads "softdep MODULE pre: A B post: C". As for modprobe,
// names before any "pre:" or "post:" count for neither; banger uses only
// the "pre:" ones, the modules that must be there before MODULE loads.
func (ix *ModuleIndex) parseSoftdep(line string) error {
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "softdep" {
		return nil
	}
	name := normalizeModuleName(f[1])
	pre := false
	for _, tok := range f[2:] {
		switch tok {
		case "pre:":
			pre = true
		case "post:":
			pre = false
		default:
			if pre {
				ix.softPre[name] = append(ix.softPre[name], tok)
			}
		}
	}
	return nil
}

// parseAlias reads "alias PATTERN MODULE".
func (ix *ModuleIndex) parseAlias(line string) error {
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "alias" {
		return nil
	}
	ix.aliases = append(ix.aliases, moduleAlias{pattern: normalizeAlias(f[1]), module: normalizeModuleName(f[2])})
	return nil
}

// moduleName turns a module path (kernel/fs/ext4/ext4.ko.xz) into its
// normalized name (ext4).
func moduleName(p string) string {
	base := path.Base(p)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return normalizeModuleName(base)
}

// normalizeModuleName makes '-' and '_' equal, as the kernel does.
func normalizeModuleName(name string) string {
	return strings.ReplaceAll(name, "-", "_")
}

// normalizeAlias is normalizeModuleName for an alias or alias pattern,
// leaving the inside of [...] alone so that ranges such as [0-9] keep
// their meaning (kmod's alias_normalize).
func normalizeAlias(alias string) string {
	b := []byte(alias)
	inBracket := false
	for i, c := range b {
		switch {
		case c == '[':
			inBracket = true
		case c == ']':
			inBracket = false
		case c == '-' && !inBracket:
			b[i] = '_'
		}
	}
	return string(b)
}

// IsModule reports whether name is a loadable module of this kernel.
func (ix *ModuleIndex) IsModule(name string) bool {
	_, ok := ix.paths[normalizeModuleName(name)]
	return ok
}

// IsBuiltin reports whether name is built into this kernel.
func (ix *ModuleIndex) IsBuiltin(name string) bool {
	return ix.builtin[normalizeModuleName(name)]
}

// Resolve returns the paths (relative to the modules directory, as
// modules.dep writes them) of the modules to load for wanted, in an
// order they can be loaded in: each module's "pre:" soft dependencies
// and its dependencies before it, each module once. Dependencies are
// visited in the reverse of their modules.dep order, as modprobe loads
// them, so the result is deterministic and matches what modprobe would
// do. A wanted module built into the kernel is skipped; one that is
// neither a module nor built in is an error.
func (ix *ModuleIndex) Resolve(wanted []string) ([]string, error) {
	r := resolver{ix: ix, state: map[string]visitState{}}
	var missing []string
	for _, w := range wanted {
		name := normalizeModuleName(w)
		switch {
		case ix.paths[name] != "":
			if err := r.visit(name, false, nil); err != nil {
				return nil, err
			}
		case ix.builtin[name]:
		default:
			missing = append(missing, w)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("kernel modules %s: neither in %s nor in modules.builtin",
			strings.Join(missing, ", "), filepath.Join(ix.dir, "modules.dep"))
	}
	return r.order, nil
}

type visitState uint8

const (
	unvisited visitState = iota
	visiting
	visited
)

type resolver struct {
	ix    *ModuleIndex
	state map[string]visitState
	order []string
}

// visit appends name after everything it needs. chain is the path of
// hard dependencies that led here, for the cycle error.
func (r *resolver) visit(name string, soft bool, chain []string) error {
	switch r.state[name] {
	case visited:
		return nil
	case visiting:
		if soft {
			return nil // soft dependencies are optional: a loop among them is broken here
		}
		return fmt.Errorf("kernel module dependency cycle: %s", strings.Join(append(chain, name), " -> "))
	}
	r.state[name] = visiting
	chain = append(chain, name)
	for _, alias := range r.ix.softPre[name] {
		if m, ok := r.ix.lookupSoft(alias); ok {
			if err := r.visit(m, true, chain); err != nil {
				return err
			}
		}
	}
	deps := r.ix.deps[name]
	for i := len(deps) - 1; i >= 0; i-- {
		d := deps[i]
		if r.ix.paths[d] == "" {
			return fmt.Errorf("kernel module %s depends on %s, which has no line in modules.dep", name, d)
		}
		if err := r.visit(d, false, chain); err != nil {
			return err
		}
	}
	r.state[name] = visited
	r.order = append(r.order, r.ix.paths[name])
	return nil
}

// lookupSoft finds the loadable module a soft dependency names, either
// directly or through modules.alias. Of several modules an alias names
// (crypto-crc32c: crc32c_intel and crc32c_generic), the first *_generic
// one wins, since it works on any CPU; otherwise the first in the file.
// It reports false when the dependency is built in or nothing provides
// it: soft dependencies are optional.
func (ix *ModuleIndex) lookupSoft(dep string) (string, bool) {
	name := normalizeModuleName(dep)
	if ix.paths[name] != "" {
		return name, true
	}
	if ix.builtin[name] {
		return "", false
	}
	alias := normalizeAlias(dep)
	var found []string
	for _, a := range ix.aliases {
		if ix.paths[a.module] == "" || !aliasMatch(a.pattern, alias) {
			continue
		}
		if strings.HasSuffix(a.module, "_generic") {
			return a.module, true
		}
		found = append(found, a.module)
	}
	if len(found) == 0 {
		return "", false
	}
	return found[0], true
}

// aliasMatch matches an alias against a modules.alias pattern, which
// uses fnmatch wildcards.
func aliasMatch(pattern, alias string) bool {
	if !strings.ContainsAny(pattern, "*?[") {
		return pattern == alias
	}
	ok, err := path.Match(pattern, alias)
	return err == nil && ok
}

// ResolveModules loads the module index in modulesDir and resolves
// wanted with it; see ModuleIndex.Resolve.
func ResolveModules(modulesDir string, wanted []string) ([]string, error) {
	ix, err := LoadModuleIndex(modulesDir)
	if err != nil {
		return nil, err
	}
	return ix.Resolve(wanted)
}

// NeedsInitramfs reports whether a guest of the kernel whose modules are
// in modulesDir needs an initramfs to load any of wanted: true when at
// least one is a loadable module rather than built in.
func NeedsInitramfs(modulesDir string, wanted []string) (bool, error) {
	mods, err := ResolveModules(modulesDir, wanted)
	if err != nil {
		return false, err
	}
	return len(mods) > 0, nil
}
