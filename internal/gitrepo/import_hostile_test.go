package gitrepo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"banger/internal/errdefs"
)

// bundleHostileCase is a bundle (or request) a hostile or broken guest
// could hand back, and the error it must end in.
type bundleHostileCase struct {
	name string
	make func(t *testing.T, w *bundleWorld) string // the bundle's path
	req  func(r *ImportRequest)
	want string // in the error
	kind error  // errors.Is the error, when not nil
}

// TestImportHostile: each bundle a guest should not be able to slip
// through fails with a clear error, leaves the host repository exactly
// as it was (no ref, no object, no FETCH_HEAD) and no quarantine.
func TestImportHostile(t *testing.T) {
	for _, c := range bundleHostileCases() {
		t.Run(c.name, func(t *testing.T) {
			w := bundleNewWorld(t)
			bundle := c.make(t, w)
			req := w.request(bundle)
			if c.req != nil {
				c.req(&req)
			}
			before := bundleSnap(t, w.host)
			res, err := Import(context.Background(), w.repo, req)
			if err == nil {
				t.Fatalf("imported: %+v", res)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q; want it to say %q", err, c.want)
			}
			if c.kind != nil && !errors.Is(err, c.kind) {
				t.Errorf("error %q is not %v", err, c.kind)
			}
			w.bundleUnchanged(t, before)
			if left := w.bundleQuarantines(t); len(left) > 0 {
				t.Errorf("quarantine left: %v", left)
			}
			if got := fixtureGit(t, w.host, "rev-parse", "main"); got != w.base {
				t.Errorf("host main moved to %s", got)
			}
		})
	}
}

func bundleHostileCases() []bundleHostileCase {
	one := func(t *testing.T, w *bundleWorld) string {
		bundleCommit(t, w.guest, "guest.txt", "g1\n", "guest one")
		return w.bundleBranch(t)
	}
	return []bundleHostileCase{
		{name: "only main", make: func(t *testing.T, w *bundleWorld) string {
			fixtureGit(t, w.guest, "checkout", "-q", "main")
			bundleCommit(t, w.guest, "a.txt", "evil\n", "evil main")
			return w.bundleMake(t, "refs/heads/main", "^"+w.base)
		}, want: "the guest's bundle has no branch banger/vm1: was it deleted or renamed in the guest?", kind: errdefs.ErrInvalidArgument},
		{name: "orphan branch", make: func(t *testing.T, w *bundleWorld) string {
			fixtureGit(t, w.guest, "checkout", "-q", "--orphan", "other")
			orphan := bundleCommit(t, w.guest, "evil.txt", "evil\n", "unrelated history")
			fixtureGit(t, w.guest, "update-ref", "refs/heads/banger/vm1", orphan)
			return w.bundleMake(t, "refs/heads/banger/vm1")
		}, want: "the guest rewrote its history: banger/vm1 does not descend from the workspace's base"},
		{name: "reset behind base", make: func(t *testing.T, w *bundleWorld) string {
			fixtureGit(t, w.guest, "reset", "-q", "--hard", w.base+"~1")
			bundleCommit(t, w.guest, "guest.txt", "rewritten\n", "rewritten")
			return w.bundleMake(t, "refs/heads/banger/vm1", "^"+w.base+"~1")
		}, want: "does not descend from the workspace's base", kind: errdefs.ErrInvalidArgument},
		{name: "pack cut short", make: func(t *testing.T, w *bundleWorld) string {
			return bundleMangle(t, one(t, w), func(header, pack []byte) []byte {
				return append(header, pack[:len(pack)/2]...)
			})
		}, want: "fetch from the guest's bundle"},
		{name: "pack bytes flipped", make: func(t *testing.T, w *bundleWorld) string {
			return bundleMangle(t, one(t, w), func(header, pack []byte) []byte {
				for i := 20; i < len(pack)-20; i += 7 {
					pack[i] ^= 0x5a
				}
				return append(header, pack...)
			})
		}, want: "fetch from the guest's bundle"},
		{name: "malformed commit", make: bundleBadCommit, want: "malformed object", kind: errdefs.ErrInvalidArgument},
		{name: "tip is a tree", make: func(t *testing.T, w *bundleWorld) string {
			bundleCommit(t, w.guest, "guest.txt", "g1\n", "guest one")
			fixtureGit(t, w.guest, "tag", "tree", "HEAD^{tree}")
			return bundleRename(t, w.bundleMake(t, "refs/tags/tree"), "refs/tags/tree")
		}, want: "points to a tree, not a commit", kind: errdefs.ErrInvalidArgument},
		{name: "prerequisite the host lacks", make: func(t *testing.T, w *bundleWorld) string {
			c1 := bundleCommit(t, w.guest, "guest.txt", "g1\n", "guest one")
			bundleCommit(t, w.guest, "guest.txt", "g2\n", "guest two")
			return w.bundleMake(t, "refs/heads/banger/vm1", "^"+c1)
		}, want: "prerequisite"},
		{name: "header names a tip the pack lacks", make: func(t *testing.T, w *bundleWorld) string {
			return bundleMangle(t, one(t, w), func(header, pack []byte) []byte {
				lines := strings.Split(string(header), "\n")
				for i, l := range lines {
					if strings.HasSuffix(l, " refs/heads/banger/vm1") {
						lines[i] = strings.Repeat("ab", 20) + " refs/heads/banger/vm1"
					}
				}
				return append([]byte(strings.Join(lines, "\n")), pack...)
			})
		}, want: "did not send all necessary objects"},
		{name: "too big", make: one, req: func(r *ImportRequest) { r.MaxBytes = 100 },
			want: "over the limit of 100", kind: errdefs.ErrInvalidArgument},
		{name: "symbolic link", make: func(t *testing.T, w *bundleWorld) string {
			link := filepath.Join(t.TempDir(), "link.bundle")
			if err := os.Symlink(one(t, w), link); err != nil {
				t.Fatal(err)
			}
			return link
		}, want: "is not a regular file (a symbolic link)", kind: errdefs.ErrInvalidArgument},
		{name: "directory", make: func(t *testing.T, w *bundleWorld) string { return t.TempDir() },
			want: "is not a regular file (a directory)", kind: errdefs.ErrInvalidArgument},
		{name: "missing", make: func(t *testing.T, w *bundleWorld) string { return filepath.Join(t.TempDir(), "none") },
			want: "does not exist", kind: errdefs.ErrNotFound},
		{name: "not a bundle", make: func(t *testing.T, w *bundleWorld) string {
			return bundleFile(t, "PK\x03\x04 this is a zip file\n\n")
		}, want: "is not a git bundle", kind: errdefs.ErrInvalidArgument},
		{name: "sha256 bundle", make: func(t *testing.T, w *bundleWorld) string {
			return bundleFile(t, "# v3 git bundle\n@object-format=sha256\n"+strings.Repeat("a", 64)+" refs/heads/banger/vm1\n\nPACK")
		}, want: "holds sha256 objects but the host repository uses sha1", kind: errdefs.ErrInvalidArgument},
		{name: "branch outside banger", make: one, req: func(r *ImportRequest) { r.Branch = "main" },
			want: `branch "main" is not a workspace branch`, kind: errdefs.ErrInvalidArgument},
		{name: "branch name invalid", make: one, req: func(r *ImportRequest) { r.Branch = "banger/a..b" },
			want: "not a valid git branch name", kind: errdefs.ErrInvalidArgument},
		{name: "base short", make: one, req: func(r *ImportRequest) { r.Base = r.Base[:12] },
			want: "is not a full 40-digit", kind: errdefs.ErrInvalidArgument},
		{name: "base not in host", make: one, req: func(r *ImportRequest) { r.Base = strings.Repeat("ab", 20) },
			want: "is not in", kind: errdefs.ErrInvalidArgument},
		{name: "negative limit", make: one, req: func(r *ImportRequest) { r.MaxBytes = -1 },
			want: "negative", kind: errdefs.ErrInvalidArgument},
	}
}

// bundleMangle rewrites a bundle through f, given its header (up to
// and with the empty line) and its pack.
func bundleMangle(t *testing.T, path string, f func(header, pack []byte) []byte) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(b), "\n\n")
	if i < 0 {
		t.Fatalf("%s has no header end", path)
	}
	header := append([]byte{}, b[:i+2]...)
	return bundleFile(t, string(f(header, append([]byte{}, b[i+2:]...))))
}

// bundleRename renames ref to refs/heads/banger/vm1 in a bundle's
// header, as a guest writing its own header could.
func bundleRename(t *testing.T, path, ref string) string {
	t.Helper()
	return bundleMangle(t, path, func(header, pack []byte) []byte {
		h := strings.Replace(string(header), " "+ref+"\n", " refs/heads/banger/vm1\n", 1)
		return append([]byte(h), pack...)
	})
}

// bundleFile writes content as a bundle file.
func bundleFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "made.bundle")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// bundleBadCommit bundles a commit fsck rejects (its author line has no
// date), made on banger/vm1 with hash-object --literally.
func bundleBadCommit(t *testing.T, w *bundleWorld) string {
	tree := fixtureGit(t, w.guest, "rev-parse", w.base+"^{tree}")
	body := "tree " + tree + "\nparent " + w.base + "\nauthor A <a@b> notadate +0000\ncommitter A <a@b> 1700000000 +0000\n\nbad date\n"
	path := bundleFile(t, body)
	bad := fixtureGit(t, w.guest, "hash-object", "-t", "commit", "--literally", "-w", path)
	fixtureGit(t, w.guest, "update-ref", "refs/heads/banger/vm1", bad)
	return w.bundleBranch(t)
}
