package gitrepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"banger/internal/errdefs"
)

// overlayEntry is one path git status lists in the host repository.
type overlayEntry struct {
	kind     byte   // '1' changed, '2' renamed, '?' untracked
	xy       string // staged and unstaged status letters, "." for none
	sub      string // "N..." or, for a submodule, "S" and its C, M, U flags
	modes    [3]string
	indexSHA string // the index's blob, for a staged change
	path     string
	orig     string // a rename's source
}

// staged says whether the host's index differs from HEAD at the path.
func (e overlayEntry) staged() bool { return e.kind != '?' && e.xy[0] != '.' }

// gitlink says whether the path is (or was) a submodule's commit.
func (e overlayEntry) gitlink() bool {
	return e.modes[0] == "160000" || e.modes[1] == "160000" || e.modes[2] == "160000"
}

// overlayRead lists the host's uncommitted work: git status in
// porcelain v2, every untracked file, no rename detection, submodules
// included. GIT_OPTIONAL_LOCKS=0 (Host's) keeps it from rewriting the
// host's index. Unmerged paths are refused: the guest could not
// continue the host's merge.
func overlayRead(ctx context.Context, repo Repo) ([]overlayEntry, error) {
	out, err := Host(ctx, repo.Root, nil, "status", "--porcelain=v2", "-z", "--no-renames",
		"--untracked-files=all", "--ignore-submodules=none")
	if err != nil {
		return nil, fmt.Errorf("read the uncommitted changes of %s: %w", repo.Root, err)
	}
	entries, unmerged, err := overlayParse(out)
	if err != nil {
		return nil, fmt.Errorf("git status in %s: %w", repo.Root, err)
	}
	if len(unmerged) > 0 {
		return nil, errdefs.Mark(errdefs.ErrConflict, fmt.Errorf(
			"repository %s has unmerged paths (a merge, rebase or cherry-pick is in progress); finish or abort it first (unmerged: %s)",
			repo.Root, overlayList(unmerged)))
	}
	return entries, nil
}

// overlayParse reads git status --porcelain=v2 -z; it returns the
// entries and, apart, the unmerged paths.
func overlayParse(out []byte) (entries []overlayEntry, unmerged []string, err error) {
	recs := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	for i := 0; i < len(recs); i++ {
		rec := recs[i]
		if rec == "" {
			continue
		}
		switch rec[0] {
		case '#', '!':
		case '?':
			entries = append(entries, overlayEntry{kind: '?', path: strings.TrimPrefix(rec, "? ")})
		case 'u':
			f := strings.SplitN(rec, " ", 11)
			if len(f) != 11 {
				return nil, nil, fmt.Errorf("unexpected status entry %q", rec)
			}
			unmerged = append(unmerged, f[10])
		case '1', '2':
			n := 9
			if rec[0] == '2' {
				n = 10
			}
			f := strings.SplitN(rec, " ", n)
			if len(f) != n || len(f[1]) != 2 {
				return nil, nil, fmt.Errorf("unexpected status entry %q", rec)
			}
			e := overlayEntry{kind: rec[0], xy: f[1], sub: f[2], modes: [3]string{f[3], f[4], f[5]}, indexSHA: f[7], path: f[n-1]}
			if rec[0] == '2' {
				if i++; i >= len(recs) {
					return nil, nil, fmt.Errorf("rename entry %q has no source path", rec)
				}
				e.orig = recs[i]
			}
			entries = append(entries, e)
		default:
			return nil, nil, fmt.Errorf("unexpected status entry %q", rec)
		}
	}
	return entries, unmerged, nil
}

// overlayList names a few paths.
func overlayList(paths []string) string {
	if len(paths) > 5 {
		return strings.Join(paths[:5], ", ") + fmt.Sprintf(" and %d more", len(paths)-5)
	}
	return strings.Join(paths, ", ")
}

// overlayCheckPath refuses a path git status should never print: one
// that is absolute, climbs out, or reaches into a .git directory.
func overlayCheckPath(p string) error {
	clean := strings.TrimSuffix(p, "/")
	if clean == "" || path.IsAbs(clean) || path.Clean(clean) != clean {
		return fmt.Errorf("git status listed the path %q, which is not a clean relative path", p)
	}
	for c := range strings.SplitSeq(clean, "/") {
		if c == ".." || strings.EqualFold(c, ".git") {
			return fmt.Errorf("git status listed the path %q, which leaves the work tree or enters a .git directory", p)
		}
	}
	return nil
}

// overlay lays the host's uncommitted work over Dest's checkout: the
// staged changes into the index, then each listed path's file as the
// host's work tree has it, then a refresh so the guest's first git
// status need not read every file.
func (b *builder) overlay(ctx context.Context) error {
	for _, e := range b.changes {
		if err := overlayCheckPath(e.path); err != nil {
			return err
		}
		if e.orig != "" {
			if err := overlayCheckPath(e.orig); err != nil {
				return err
			}
		}
	}
	if err := b.overlayIndex(ctx); err != nil {
		return err
	}
	if err := b.overlayWorkTree(ctx); err != nil {
		return err
	}
	var intent []string
	for _, e := range b.changes {
		if e.kind == '1' && e.xy == ".A" {
			intent = append(intent, e.path) // git add -N on the host
		}
	}
	dest := b.opts.Dest
	if len(intent) > 0 {
		args := append([]string{"add", "-f", "-N", "--"}, intent...)
		if _, err := buildGit(ctx, dest, nil, args...); err != nil {
			return fmt.Errorf("mark intent-to-add paths: %w", err)
		}
	}
	// -q: paths that differ from the index are what the overlay made,
	// not a failure.
	if _, err := buildGit(ctx, dest, nil, "update-index", "-q", "--refresh"); err != nil {
		return fmt.Errorf("refresh the index: %w", err)
	}
	return nil
}

// overlayIndex makes Dest's index what the host's is at each staged
// path: the host's index blobs copied over in one pack, then one
// update-index --index-info (mode 0 removes a path).
func (b *builder) overlayIndex(ctx context.Context) error {
	var info bytes.Buffer
	var blobs []string
	seen := map[string]bool{}
	zero := strings.Repeat("0", len(b.repo.Head))
	for _, e := range b.changes {
		if !e.staged() {
			continue
		}
		if e.orig != "" {
			fmt.Fprintf(&info, "0 %s\t%s\x00", zero, e.orig)
		}
		if e.modes[1] == "000000" {
			fmt.Fprintf(&info, "0 %s\t%s\x00", zero, e.path)
			continue
		}
		fmt.Fprintf(&info, "%s %s\t%s\x00", e.modes[1], e.indexSHA, e.path)
		if e.modes[1] != "160000" && !seen[e.indexSHA] {
			seen[e.indexSHA] = true
			blobs = append(blobs, e.indexSHA)
		}
	}
	if info.Len() == 0 {
		return nil
	}
	if len(blobs) > 0 {
		if err := overlayCopyBlobs(ctx, b.repo.Root, b.opts.Dest, blobs); err != nil {
			return err
		}
	}
	if _, err := buildGit(ctx, b.opts.Dest, &info, "update-index", "-z", "--index-info"); err != nil {
		return fmt.Errorf("stage the host's staged changes: %w", err)
	}
	return nil
}

// overlayCopyBlobs streams blobs from the host repository (pack-objects
// only reads) into Dest's object store.
func overlayCopyBlobs(ctx context.Context, hostDir, dest string, blobs []string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	env := append(append([]string{}, baseEnv...), isolatedEnv...)
	pr, pw := io.Pipe()
	packed := make(chan error, 1)
	go func() {
		_, err := runGit(ctx, hostDir, env, strings.NewReader(strings.Join(blobs, "\n")+"\n"), pw,
			"pack-objects", "-q", "--stdout")
		pw.CloseWithError(err)
		packed <- err
	}()
	_, err := runGit(ctx, dest, env, pr, nil, append(append([]string{}, buildGuestConfig...), "index-pack", "--stdin")...)
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		cancel()
	}
	perr := <-packed
	switch {
	case perr != nil && !errors.Is(perr, context.Canceled):
		return fmt.Errorf("read the host's staged files: %w", perr) // the cause of index-pack's failure
	case err != nil:
		return fmt.Errorf("copy the host's staged files: %w", err)
	case perr != nil:
		return fmt.Errorf("read the host's staged files: %w", perr)
	}
	return nil
}
