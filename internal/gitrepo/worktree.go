package gitrepo

import (
	"context"
	"os"
	"path/filepath"
	"strings"
)

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
