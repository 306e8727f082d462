package gitrepo

import (
	"context"
	"os"
	"path/filepath"
	"strings"
)

// PreparedTips is the file, in a guest repository's git directory, that
// lists the commits it was given ("^<id>" per line): what a harvest
// leaves out when it looks for commits the guest made off its branch.
const PreparedTips = "banger-prepared"

// MarkPrepared records, in the repository Build made at dir, what it was
// given: the commits its refs point at (PreparedTips), and returns the
// tree of its work tree (WorktreeTree).
func MarkPrepared(ctx context.Context, dir string) (string, error) {
	out, err := Isolated(ctx, dir, nil, nil, "for-each-ref", "--format=%(objectname) %(objecttype)")
	if err != nil {
		return "", err
	}
	var tips strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if id, kind, ok := strings.Cut(line, " "); ok && kind == "commit" {
			tips.WriteString("^" + id + "\n")
		}
	}
	if err := os.WriteFile(filepath.Join(dir, ".git", PreparedTips), []byte(tips.String()), 0o644); err != nil {
		return "", err
	}
	return WorktreeTree(ctx, dir)
}

// WorktreeTree is the tree object of everything in dir's work tree that
// git would commit (`git add -A`, ignored files left out), written into
// dir's object store without touching its index: a fingerprint of the
// work tree that the guest can later compare its own against, to tell
// the work it did from the work it was given.
func WorktreeTree(ctx context.Context, dir string) (string, error) {
	idx, err := os.CreateTemp("", "banger-index-*")
	if err != nil {
		return "", err
	}
	idx.Close()
	defer os.Remove(idx.Name())
	if b, err := os.ReadFile(filepath.Join(dir, ".git", "index")); err == nil {
		if err := os.WriteFile(idx.Name(), b, 0o600); err != nil {
			return "", err
		}
	} else {
		os.Remove(idx.Name())
	}
	env := []string{"GIT_INDEX_FILE=" + idx.Name()}
	if _, err := Isolated(ctx, dir, env, nil, "add", "-A"); err != nil {
		return "", err
	}
	out, err := Isolated(ctx, dir, env, nil, "write-tree")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}
