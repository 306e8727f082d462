package helper

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// mkdirMode makes dir with exactly mode (sticky included), whatever the
// umask.
func mkdirMode(t *testing.T, dir string, mode os.FileMode) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	return dir
}

func chown(t *testing.T, path string, uid int) {
	t.Helper()
	if err := os.Lchown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, what string, err error, says ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: accepted; want an error saying %q", what, says)
		return
	}
	for _, s := range says {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%s: %v; want it to say %q", what, err, s)
		}
	}
}

// TestCheckRootDir: a directory is the helper's only if it and every
// directory above it can be changed by root alone; a sticky root-owned
// directory may be on the way, but not the directory itself.
func TestCheckRootDir(t *testing.T) {
	base := t.TempDir()
	own := mkdirMode(t, filepath.Join(base, "own"), 0o755)
	if got, err := checkRootDir(own); err != nil || got != own {
		t.Errorf("a 0755 directory of ours: %q, %v", got, err)
	}

	open := mkdirMode(t, filepath.Join(base, "open"), 0o777)
	wantErr(t, "a 0777 directory", func() error { _, err := checkRootDir(open); return err }(),
		open, "writable by group or others (mode 0777)")
	group := mkdirMode(t, filepath.Join(base, "group"), 0o775)
	wantErr(t, "a group-writable directory", func() error { _, err := checkRootDir(group); return err }(), group, "writable by group")
	sticky := mkdirMode(t, filepath.Join(base, "sticky"), os.ModeSticky|0o777)
	wantErr(t, "a sticky 1777 directory as the file's own", func() error { _, err := checkRootDir(sticky); return err }(), sticky, "writable by group or others")

	below := mkdirMode(t, filepath.Join(open, "below"), 0o755)
	wantErr(t, "a directory under a 0777 one", func() error { _, err := checkRootDir(below); return err }(),
		open+" is writable by group or others", "who could replace what is in it")
	underSticky := mkdirMode(t, filepath.Join(sticky, "under"), 0o755)
	if _, err := checkRootDir(underSticky); err != nil {
		t.Errorf("a root directory in a sticky one, as in /tmp: %v", err)
	}

	link := filepath.Join(base, "link")
	if err := os.Symlink(own, link); err != nil {
		t.Fatal(err)
	}
	if got, err := checkRootDir(filepath.Join(link, ".")); err != nil || got != own {
		t.Errorf("through our own symlink: %q, %v; want %q", got, err, own)
	}
	relLink := filepath.Join(own, "up")
	os.Symlink("../sticky/under", relLink)
	if got, err := checkRootDir(relLink); err != nil || got != underSticky {
		t.Errorf("a relative symlink: %q, %v; want %q", got, err, underSticky)
	}
	intoOpen := filepath.Join(base, "into-open")
	os.Symlink(below, intoOpen)
	wantErr(t, "a symlink into a 0777 directory", func() error { _, err := checkRootDir(intoOpen); return err }(), open)
	loop := filepath.Join(base, "loop")
	os.Symlink(loop, loop)
	wantErr(t, "a symlink loop", func() error { _, err := checkRootDir(loop); return err }(), "symlinks")

	_, err := checkRootDir(filepath.Join(base, "missing"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing directory: %v", err)
	}
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o644)
	wantErr(t, "a file", func() error { _, err := checkRootDir(file); return err }(), "not a directory")

	if os.Geteuid() != 0 {
		t.Skip("the rest hands files to another uid, which needs root")
	}
	theirs := mkdirMode(t, filepath.Join(base, "theirs"), 0o755)
	chown(t, theirs, nobody)
	wantErr(t, "a directory owned by nobody", func() error { _, err := checkRootDir(theirs); return err }(), theirs, "owned by uid 65534")
	inTheirs := mkdirMode(t, filepath.Join(theirs, "run"), 0o755)
	wantErr(t, "a root directory in one owned by nobody", func() error { _, err := checkRootDir(inTheirs); return err }(),
		theirs+" is owned by uid 65534", "could replace")
	theirSticky := mkdirMode(t, filepath.Join(base, "their-sticky"), os.ModeSticky|0o777)
	chown(t, theirSticky, nobody)
	inTheirSticky := mkdirMode(t, filepath.Join(theirSticky, "run"), 0o755)
	wantErr(t, "a sticky directory owned by nobody", func() error { _, err := checkRootDir(inTheirSticky); return err }(), theirSticky)
	theirLink := filepath.Join(sticky, "their-link")
	os.Symlink(own, theirLink)
	chown(t, theirLink, nobody)
	wantErr(t, "nobody's symlink in a sticky directory", func() error { _, err := checkRootDir(theirLink); return err }(),
		theirLink, "symlink owned by uid 65534")
}

// TestReadRootFile: the config is read from the one descriptor that was
// checked, and only from a file and directories root alone can change.
func TestReadRootFile(t *testing.T) {
	base := t.TempDir()
	dir := mkdirMode(t, filepath.Join(base, "etc"), 0o755)
	cfg := filepath.Join(dir, "helper.toml")
	os.WriteFile(cfg, []byte("allowed_uids = [1]\n"), 0o644)
	if data, err := readRootFile(cfg); err != nil || string(data) != "allowed_uids = [1]\n" {
		t.Errorf("a 0644 file of ours: %q, %v", data, err)
	}
	os.Chmod(cfg, 0o666)
	_, err := readRootFile(cfg)
	wantErr(t, "a world-writable file", err, cfg, "writable by group or others (mode 0666)")
	os.Chmod(cfg, 0o620)
	_, err = readRootFile(cfg)
	wantErr(t, "a group-writable file", err, "writable by group")
	os.Chmod(cfg, 0o644)

	link := filepath.Join(dir, "link.toml")
	os.Symlink(cfg, link)
	_, err = readRootFile(link)
	wantErr(t, "a symlinked file", err, link, "symlink")
	_, err = readRootFile(dir)
	wantErr(t, "a directory", err, "not a regular file")
	fifo := filepath.Join(dir, "fifo.toml")
	unix.Mkfifo(fifo, 0o644)
	done := make(chan error, 1)
	go func() { _, err := readRootFile(fifo); done <- err }()
	select {
	case err := <-done:
		wantErr(t, "a FIFO", err, "not a regular file")
	case <-time.After(5 * time.Second):
		t.Fatal("reading a FIFO hung")
	}
	big := filepath.Join(dir, "big.toml")
	os.WriteFile(big, make([]byte, maxConfigBytes+1), 0o644)
	_, err = readRootFile(big)
	wantErr(t, "an oversized file", err, "over")

	// The swap of finding 2: a directory others can write, where the file
	// could be replaced between a check and a reopen.
	open := mkdirMode(t, filepath.Join(base, "open"), 0o777)
	inOpen := filepath.Join(open, "helper.toml")
	os.WriteFile(inOpen, nil, 0o644)
	_, err = readRootFile(inOpen)
	wantErr(t, "a file in a 0777 directory", err, open, "writable by group or others")
	sub := mkdirMode(t, filepath.Join(open, "banger"), 0o755)
	inSub := filepath.Join(sub, "helper.toml")
	os.WriteFile(inSub, nil, 0o644)
	_, err = readRootFile(inSub)
	wantErr(t, "a file two levels under a 0777 directory", err, open)

	if os.Geteuid() != 0 {
		t.Skip("the rest hands files to another uid, which needs root")
	}
	chown(t, cfg, nobody)
	_, err = readRootFile(cfg)
	wantErr(t, "a file owned by nobody", err, cfg, "owned by uid 65534")
	chown(t, cfg, 0)
	chown(t, dir, nobody)
	_, err = readRootFile(cfg)
	wantErr(t, "a file in a directory owned by nobody", err, dir, "owned by uid 65534")
}

// TestEnsureRootDir: the socket's and the state's directories are made
// only where root alone can change them, and what a refused call made is
// removed.
func TestEnsureRootDir(t *testing.T) {
	base := t.TempDir()
	want := filepath.Join(base, "run", "banger")
	got, _, err := ensureRootDir(want)
	if err != nil || got != want {
		t.Fatalf("a new directory: %q, %v", got, err)
	}
	if fi, err := os.Stat(want); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("made %v, %v; want mode 0755", fi, err)
	}
	if got, _, err := ensureRootDir(want); err != nil || got != want {
		t.Errorf("again: %q, %v", got, err)
	}

	sticky := mkdirMode(t, filepath.Join(base, "tmp"), os.ModeSticky|0o777)
	if _, _, err := ensureRootDir(filepath.Join(sticky, "h")); err != nil {
		t.Errorf("a new directory in a sticky one, as in /tmp: %v", err)
	}
	open := mkdirMode(t, filepath.Join(base, "open"), 0o777)
	_, _, err = ensureRootDir(filepath.Join(open, "a", "b"))
	wantErr(t, "a new directory under a 0777 one", err, open, "writable by group or others")
	if _, err := os.Lstat(filepath.Join(open, "a")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused call left %s/a behind: %v", open, err)
	}
	exists := mkdirMode(t, filepath.Join(sticky, "open"), 0o777)
	_, _, err = ensureRootDir(exists)
	wantErr(t, "an existing 0777 directory", err, exists)

	if os.Geteuid() != 0 {
		t.Skip("the rest hands files to another uid, which needs root")
	}
	// Finding 3: the socket directory's parent is a user's, who could
	// rename the directory and put their own socket in its place.
	theirs := mkdirMode(t, filepath.Join(base, "theirs"), 0o755)
	chown(t, theirs, nobody)
	mkdirMode(t, filepath.Join(theirs, "banger"), 0o755)
	_, _, err = ensureRootDir(filepath.Join(theirs, "banger"))
	wantErr(t, "a directory in one owned by nobody", err, theirs, "owned by uid 65534")
	_, _, err = ensureRootDir(filepath.Join(theirs, "new"))
	wantErr(t, "a new directory in one owned by nobody", err, theirs)
	if _, err := os.Lstat(filepath.Join(theirs, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused call made %s/new: %v", theirs, err)
	}
	// A user made the directory first, in a sticky one: refused, and
	// not removed, since the helper did not make it.
	planted := mkdirMode(t, filepath.Join(sticky, "planted"), 0o755)
	chown(t, planted, nobody)
	_, _, err = ensureRootDir(filepath.Join(planted, "state"))
	wantErr(t, "a directory a user made first", err, planted, "owned by uid 65534")
	if _, err := os.Lstat(planted); err != nil {
		t.Errorf("the user's directory was removed: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(planted, "state")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a directory was made inside the user's: %v", err)
	}
	// A user's symlink where the directory would be made.
	trap := filepath.Join(sticky, "trap")
	os.Symlink(want, trap)
	chown(t, trap, nobody)
	_, _, err = ensureRootDir(filepath.Join(trap, "x"))
	wantErr(t, "a user's symlink on the way", err, trap)
	if _, err := os.Lstat(filepath.Join(want, "x")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a directory was made through the user's symlink: %v", err)
	}
}
