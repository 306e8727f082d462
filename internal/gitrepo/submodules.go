package gitrepo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"banger/internal/errdefs"
	"banger/internal/model"
)

// subMaxDepth bounds how deep submodules of submodules are followed.
const subMaxDepth = 8

// subLink is a submodule as a superproject's index records it.
type subLink struct {
	path, sha string
}

// submodules brings in each submodule Dest's index records, from the
// host's checkout of it, at the recorded commit.
func (b *builder) submodules(ctx context.Context) error {
	flags := map[string]string{}
	for _, e := range b.changes {
		if strings.HasPrefix(e.sub, "S") {
			flags[e.path] = e.sub
		}
	}
	return b.subBring(ctx, b.repo.Root, b.opts.Dest, "", 0, flags)
}

// subBring brings in the submodules of the repository at destDir, made
// from the one at hostDir; prefix is destDir's path in Dest, for
// messages. flags are git status's submodule flags by path, for the
// top level.
func (b *builder) subBring(ctx context.Context, hostDir, destDir, prefix string, depth int, flags map[string]string) error {
	links, err := subLinks(ctx, destDir)
	if err != nil || len(links) == 0 {
		return err
	}
	if depth >= subMaxDepth {
		b.warn("submodules below %s are nested more than %d deep; left empty", strings.TrimSuffix(prefix, "/"), subMaxDepth)
		return nil
	}
	dest, err := os.OpenRoot(destDir)
	if err != nil {
		return fmt.Errorf("open %s: %w", destDir, errdefs.PathCause(err))
	}
	defer dest.Close()
	modules, err := subModules(ctx, dest, destDir)
	if err != nil {
		return err
	}
	for _, l := range links {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := prefix + l.path
		hostSub := filepath.Join(hostDir, filepath.FromSlash(l.path))
		if why := subHostReady(ctx, hostDir, l); why != "" {
			b.warn("submodule %s %s; left empty", name, why)
			continue
		}
		if err := subEmptyDir(dest, l.path); err != nil {
			b.warn("submodule %s: %v; left as it is", name, err)
			continue
		}
		destSub := filepath.Join(destDir, filepath.FromSlash(l.path))
		if err := b.subClone(ctx, hostSub, destSub, l.sha); err != nil {
			return fmt.Errorf("submodule %s: %w", name, err)
		}
		if err := subRegister(ctx, destDir, modules, l.path); err != nil {
			return fmt.Errorf("submodule %s: %w", name, err)
		}
		if _, ok := modules[l.path]; !ok {
			b.warn("submodule %s has no entry in .gitmodules; brought in, but the guest's git submodule commands will not know it", name)
		}
		b.res.Submodules++
		b.subWarnDirty(name, flags[l.path])
		if err := b.subBring(ctx, hostSub, destSub, name+"/", depth+1, nil); err != nil {
			return err
		}
	}
	return nil
}

// subClone makes destSub, an empty directory, a repository at commit
// sha made from the host's hostSub: that commit alone for
// shallow_overlay, every branch and tag for full_copy; HEAD detached
// there, as git submodule update leaves it.
func (b *builder) subClone(ctx context.Context, hostSub, destSub, sha string) error {
	var err error
	if b.mode == model.WorkspacePrepareModeFullCopy {
		err = buildMirror(ctx, hostSub, destSub)
	} else {
		err = buildFetch(ctx, hostSub, destSub, b.opts.Branch, sha, true)
	}
	if err != nil {
		return err
	}
	if err := buildSetIdentity(ctx, destSub, b.repo); err != nil {
		return err
	}
	_, err = buildGit(ctx, destSub, nil, "checkout", "-q", "-f", "--detach", sha)
	return err
}

// subWarnDirty says what of the host's submodule the guest lacks.
func (b *builder) subWarnDirty(name, flags string) {
	if len(flags) != 4 {
		return
	}
	var what []string
	if flags[1] == 'C' {
		what = append(what, "is at another commit than the superproject records")
	}
	if flags[2] == 'M' {
		what = append(what, "has modified files")
	}
	if flags[3] == 'U' {
		what = append(what, "has untracked files")
	}
	if len(what) > 0 {
		b.warn("submodule %s on the host %s; the guest has it clean at the recorded commit", name, strings.Join(what, " and "))
	}
}

// subLinks lists the gitlinks in dir's index.
func subLinks(ctx context.Context, dir string) ([]subLink, error) {
	out, err := buildGit(ctx, dir, nil, "ls-files", "-s", "-z")
	if err != nil {
		return nil, err
	}
	var links []subLink
	for rec := range strings.SplitSeq(string(out), "\x00") {
		if !strings.HasPrefix(rec, "160000 ") {
			continue
		}
		meta, path, ok := strings.Cut(rec, "\t")
		f := strings.Fields(meta)
		if !ok || len(f) != 3 {
			return nil, fmt.Errorf("git ls-files in %s: unexpected entry %q", dir, rec)
		}
		if err := overlayCheckPath(path); err != nil {
			return nil, err
		}
		links = append(links, subLink{path: path, sha: f[1]})
	}
	return links, nil
}

// subModule is a submodule's entry in .gitmodules.
type subModule struct {
	name, url string
}

// subModules reads dir's .gitmodules: the submodules by path.
func subModules(ctx context.Context, root *os.Root, dir string) (map[string]subModule, error) {
	mods := map[string]subModule{}
	if fi, err := root.Lstat(".gitmodules"); err != nil || !fi.Mode().IsRegular() {
		return mods, nil // none, or not a file git would read either
	}
	out, err := buildGit(ctx, dir, nil, "config", "-f", ".gitmodules", "-z", "--get-regexp", `^submodule\..*\.(path|url)$`)
	if err != nil {
		return mods, nil // no entries
	}
	paths, urls := map[string]string{}, map[string]string{}
	for rec := range strings.SplitSeq(string(out), "\x00") {
		key, val, _ := strings.Cut(rec, "\n")
		rest, ok := strings.CutPrefix(key, "submodule.")
		if !ok {
			continue
		}
		if name, ok := strings.CutSuffix(rest, ".path"); ok {
			paths[name] = val
		} else if name, ok := strings.CutSuffix(rest, ".url"); ok {
			urls[name] = val
		}
	}
	for name, p := range paths {
		mods[strings.TrimSuffix(p, "/")] = subModule{name: name, url: urls[name]}
	}
	return mods, nil
}

// subRegister records the submodule at path as initialised in dir's
// configuration, as git submodule init does.
func subRegister(ctx context.Context, dir string, mods map[string]subModule, path string) error {
	m, ok := mods[path]
	if !ok {
		return nil
	}
	if m.url != "" {
		if _, err := buildGit(ctx, dir, nil, "config", "submodule."+m.name+".url", m.url); err != nil {
			return err
		}
	}
	_, err := buildGit(ctx, dir, nil, "config", "submodule."+m.name+".active", "true")
	return err
}

// subHostReady says why the host's checkout of l cannot be cloned: ""
// when it is a repository of its own holding the recorded commit.
func subHostReady(ctx context.Context, hostDir string, l subLink) string {
	root, err := os.OpenRoot(hostDir)
	if err != nil {
		return "cannot be read on the host"
	}
	fi, err := overlayLstat(root, l.path)
	root.Close()
	if err != nil || fi == nil || !fi.IsDir() {
		return "is not checked out on the host"
	}
	dir := filepath.Join(hostDir, filepath.FromSlash(l.path))
	top, err := Isolated(ctx, dir, nil, nil, "rev-parse", "--path-format=absolute", "--show-toplevel")
	if err != nil || filepath.Clean(strings.TrimSpace(string(top))) != dir {
		return "is not initialised on the host"
	}
	if _, err := Isolated(ctx, dir, nil, nil, "cat-file", "-e", l.sha+"^{commit}"); err != nil {
		return fmt.Sprintf("on the host does not have the recorded commit %s", buildShort(l.sha))
	}
	return ""
}

// subEmptyDir makes sure path in dest is a real, empty directory.
func subEmptyDir(dest *os.Root, path string) error {
	if err := overlayParents(dest, path); err != nil {
		return err
	}
	fi, err := dest.Lstat(path)
	if err != nil {
		return dest.Mkdir(path, 0o755)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory in the destination", path)
	}
	d, err := dest.Open(path)
	if err != nil {
		return err
	}
	defer d.Close()
	if names, _ := d.Readdirnames(1); len(names) > 0 {
		return fmt.Errorf("%s is not empty in the destination", path)
	}
	return nil
}
