package disk

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"banger/internal/guestapi"
	"banger/internal/model"
)

// tree writes files under dir: a path ending in "/" is a directory, a
// value starting with "->" a symlink, anything else a file; modes are
// set after, from the mode map.
func tree(t *testing.T, dir string, files map[string]string, modes map[string]os.FileMode) {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		content := files[name]
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasSuffix(name, "/"):
			err = os.MkdirAll(p, 0o755)
		case strings.HasPrefix(content, "->"):
			err = os.Symlink(strings.TrimPrefix(content, "->"), p)
		default:
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for name, m := range modes {
		if err := os.Chmod(filepath.Join(dir, name), m); err != nil {
			t.Fatal(err)
		}
	}
}

// wantExt checks a path's type and mode bits and, for a file, content.
func wantExt(t *testing.T, img, p string, mode uint32, content string) {
	t.Helper()
	e, ok := statExt(t, img, p)
	if !ok {
		t.Errorf("%s is not on the work disk", p)
		return
	}
	if e.Mode != mode {
		t.Errorf("%s has mode %o, want %o", p, e.Mode, mode)
	}
	if mode&0o170000 == 0o100000 {
		if got := catExt(t, img, p); got != content {
			t.Errorf("%s holds %q, want %q", p, got, content)
		}
	}
}

func wantNoExt(t *testing.T, img, p string) {
	t.Helper()
	if _, ok := statExt(t, img, p); ok {
		t.Errorf("%s is on the work disk", p)
	}
}

const (
	regular = 0o100000
	dirType = 0o040000
	symlink = 0o120000
)

func TestBuildWorkDisk(t *testing.T) {
	base := t.TempDir()
	home, seed, out := filepath.Join(base, "home"), filepath.Join(base, "seed"), filepath.Join(base, "out")
	abs := filepath.Join(home, "abs") // named by an absolute path, inside the home
	tree(t, seed, map[string]string{
		".bashrc":          "seed bashrc\n",
		".profile":         "seed profile\n",
		".config/app.conf": "app=1\n",
		".link":            "->.bashrc",
		".gitconfig":       "seed gitconfig\n",
	}, map[string]os.FileMode{".config": 0o700, ".config/app.conf": 0o640})
	tree(t, home, map[string]string{
		".gitconfig":             "[user]\n\tname = me\n",
		"bin/tool":               "#!/bin/sh\n",
		"proj/README":            "readme\n",
		"proj/run.sh":            "#!/bin/sh\necho hi\n",
		"proj/sub/deep.txt":      "deep\n",
		"proj/link-in-home":      "->../.gitconfig",
		"proj/sub/link-to-dir/":  "",
		"keys/authorized_keys":   "ssh-ed25519 EVIL attacker\n",
		"a.txt":                  "from a\n",
		"b.txt":                  "from b\n",
		"cfg.txt":                "cfg\n",
		"tool.conf":              "tool\n",
		"scripts/setuid-ignored": "#!/bin/sh\n",
	}, map[string]os.FileMode{"bin/tool": 0o755, "proj/run.sh": 0o755, "proj": 0o700, "scripts/setuid-ignored": 0o4755})
	if err := syscall.Mkfifo(filepath.Join(home, "proj", "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", filepath.Join(home, "proj", "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tree(t, abs, map[string]string{"data/x": "x\n", "data/y": "->x", "link": "->data"}, nil)
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}

	spec := WorkDiskSpec{
		Path:      filepath.Join(out, "work.ext4"),
		SizeBytes: 64 << 20,
		SeedDir:   seed,
		Home:      home,
		Sync: []model.FileSyncEntry{
			{Host: "~/.gitconfig", Guest: "~/.gitconfig"},                         // 0
			{Host: "~/bin/tool", Guest: "/root/bin/tool"},                         // 1
			{Host: "~/proj", Guest: "~/work/proj", Mode: "0750"},                  // 2
			{Host: "~/missing", Guest: "~/missing"},                               // 3
			{Host: "~/keys/authorized_keys", Guest: "~/.ssh/authorized_keys"},     // 4
			{Host: "~/a.txt", Guest: "~/same.txt"},                                // 5
			{Host: "~/b.txt", Guest: "~/same.txt"},                                // 6
			{Host: "~/cfg.txt", Guest: "~/cfg.txt", Mode: "640"},                  // 7
			{Host: filepath.Join(abs, "link"), Guest: "/root/abs"},                // 8
			{Host: "~/tool.conf", Guest: "~/.config/tool.conf"},                   // 9
			{Host: "~/scripts/setuid-ignored", Guest: "~/scripts/setuid-ignored"}, // 10
		},
		Files: []File{
			{GuestPath: guestapi.AuthorizedKeysPath, Data: []byte("ssh-ed25519 AAAA bangerd\n"), Mode: 0o600},
			{GuestPath: guestapi.HostKeyPath, Data: []byte("PRIVATE\n"), Mode: 0o600},
			{GuestPath: guestapi.HostKeyPath + ".pub", Data: []byte("PUBLIC\n"), Mode: 0o644},
		},
	}
	res, err := BuildWorkDisk(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	img := spec.Path

	wantWarnings := []string{
		"file_sync[2] (~/proj → ~/work/proj): " + home + "/proj/fifo is a named pipe; skipped",
		"file_sync[2] (~/proj → ~/work/proj): " + home + "/proj/sock is a socket; skipped",
		"file_sync[3] (~/missing → ~/missing): " + home + "/missing does not exist on the host; skipped",
	}
	if !slices.Equal(res.Warnings, wantWarnings) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(res.Warnings, "\n"), strings.Join(wantWarnings, "\n"))
	}
	if os.Geteuid() == 0 && res.Ownership != OwnedByRoot {
		t.Errorf("ownership as root: %q", res.Ownership)
	}

	// The seed, as it was, modes and symlinks included.
	wantExt(t, img, "/root/.bashrc", regular|0o644, "seed bashrc\n")
	wantExt(t, img, "/root/.profile", regular|0o644, "seed profile\n")
	wantExt(t, img, "/root/.config", dirType|0o700, "")
	wantExt(t, img, "/root/.config/app.conf", regular|0o640, "app=1\n")
	wantExt(t, img, "/root/.link", symlink|0o777, "")
	// File sync over the seed, with the default modes.
	wantExt(t, img, "/root/.gitconfig", regular|0o600, "[user]\n\tname = me\n")
	wantExt(t, img, "/root/bin", dirType|0o755, "")
	wantExt(t, img, "/root/bin/tool", regular|0o700, "#!/bin/sh\n")
	// A directory, recursively: its Mode on it, defaults inside, the
	// symlink to a file elsewhere in the home copied as a file, special
	// files left out.
	wantExt(t, img, "/root/work", dirType|0o755, "")
	wantExt(t, img, "/root/work/proj", dirType|0o750, "")
	wantExt(t, img, "/root/work/proj/README", regular|0o600, "readme\n")
	wantExt(t, img, "/root/work/proj/run.sh", regular|0o700, "#!/bin/sh\necho hi\n")
	wantExt(t, img, "/root/work/proj/sub", dirType|0o755, "")
	wantExt(t, img, "/root/work/proj/sub/link-to-dir", dirType|0o755, "")
	wantExt(t, img, "/root/work/proj/sub/deep.txt", regular|0o600, "deep\n")
	wantExt(t, img, "/root/work/proj/link-in-home", regular|0o600, "[user]\n\tname = me\n")
	wantNoExt(t, img, "/root/work/proj/fifo")
	wantNoExt(t, img, "/root/work/proj/sock")
	wantNoExt(t, img, "/root/missing")
	// A later entry wins; an explicit Mode on a file.
	wantExt(t, img, "/root/same.txt", regular|0o600, "from b\n")
	wantExt(t, img, "/root/cfg.txt", regular|0o640, "cfg\n")
	// An absolute host path inside the home that is itself a symlink is
	// followed; the symlink inside it stays in the home, and is copied as
	// a file.
	wantExt(t, img, "/root/abs", dirType|0o755, "")
	wantExt(t, img, "/root/abs/x", regular|0o600, "x\n")
	wantExt(t, img, "/root/abs/y", regular|0o600, "x\n")
	// Into a seed directory, which keeps its mode.
	wantExt(t, img, "/root/.config/tool.conf", regular|0o600, "tool\n")
	// Never setuid.
	wantExt(t, img, "/root/scripts/setuid-ignored", regular|0o700, "#!/bin/sh\n")
	// The keys come last: file sync cannot replace them.
	wantExt(t, img, guestapi.AuthorizedKeysPath, regular|0o600, "ssh-ed25519 AAAA bangerd\n")
	wantExt(t, img, "/root/.banger", dirType|0o700, "")
	wantExt(t, img, guestapi.HostKeyPath, regular|0o600, "PRIVATE\n")
	wantExt(t, img, guestapi.HostKeyPath+".pub", regular|0o644, "PUBLIC\n")

	if label := strings.TrimSpace(debugfs(t, img, "stats")); !strings.Contains(label, "Filesystem volume name:   "+WorkDiskLabel) {
		t.Errorf("label is not %s:\n%s", WorkDiskLabel, label)
	}
	if got := fsBytes(t, img); got != 64<<20 {
		t.Errorf("work disk file system is %d bytes, want 64 MiB", got)
	}
	if left := listDir(t, out); !slices.Equal(left, []string{"work.ext4"}) {
		t.Errorf("left next to the work disk: %v", left)
	}
	if os.Geteuid() == 0 {
		for _, p := range []string{"/root/.bashrc", "/root/work/proj/README", guestapi.AuthorizedKeysPath} {
			if e, _ := statExt(t, img, p); e.UID != 0 || e.GID != 0 {
				t.Errorf("%s is owned by %d:%d, want root", p, e.UID, e.GID)
			}
		}
	}
}

// TestBuildWorkDiskKeysReplaceAnything: whatever file sync leaves at a
// key's path, or above it, the key takes its place.
func TestBuildWorkDiskKeysReplaceAnything(t *testing.T) {
	base := t.TempDir()
	home := filepath.Join(base, "home")
	tree(t, home, map[string]string{"dir/f": "f\n", "file": "not a dir\n"}, nil)
	spec := WorkDiskSpec{
		Path: filepath.Join(base, "work.ext4"), SizeBytes: 32 << 20, Home: home,
		Sync: []model.FileSyncEntry{
			{Host: "~/dir", Guest: "~/.ssh/authorized_keys"}, // a directory where the key goes
			{Host: "~/file", Guest: "~/.banger"},             // a file where the key's directory goes
		},
		Files: []File{
			{GuestPath: guestapi.AuthorizedKeysPath, Data: []byte("key\n")},
			{GuestPath: guestapi.HostKeyPath, Data: []byte("host\n"), Mode: 0o600},
		},
	}
	if _, err := BuildWorkDisk(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	wantExt(t, spec.Path, guestapi.AuthorizedKeysPath, regular|0o600, "key\n")
	wantExt(t, spec.Path, "/root/.banger", dirType|0o700, "")
	wantExt(t, spec.Path, guestapi.HostKeyPath, regular|0o600, "host\n")
}

func TestBuildWorkDiskNoSeed(t *testing.T) {
	base := t.TempDir()
	for _, seed := range []string{"", filepath.Join(base, "no-such-seed")} {
		spec := WorkDiskSpec{Path: filepath.Join(base, "work.ext4"), SizeBytes: 16 << 20, SeedDir: seed}
		res, err := BuildWorkDisk(context.Background(), spec)
		if err != nil {
			t.Fatalf("seed %q: %v", seed, err)
		}
		if len(res.Warnings) != 0 {
			t.Errorf("seed %q: warnings %v", seed, res.Warnings)
		}
		if _, ok := lsExt(t, spec.Path, "/")["lost+found"]; !ok {
			t.Errorf("seed %q: the work disk is not an empty ext4", seed)
		}
	}
}

func TestBuildWorkDiskRejectsSpec(t *testing.T) {
	base := t.TempDir()
	seedFile := filepath.Join(base, "seed-file")
	os.WriteFile(seedFile, nil, 0o644)
	for name, tc := range map[string]struct {
		spec WorkDiskSpec
		want string
	}{
		"no path":        {WorkDiskSpec{SizeBytes: 16 << 20}, "work disk: no path"},
		"too small":      {WorkDiskSpec{Path: filepath.Join(base, "w"), SizeBytes: 1 << 20}, "work disk size 1M is outside 8M to 128G"},
		"seed not a dir": {WorkDiskSpec{Path: filepath.Join(base, "w"), SizeBytes: 16 << 20, SeedDir: seedFile}, "is not a directory"},
		"file outside":   {WorkDiskSpec{Path: filepath.Join(base, "w"), SizeBytes: 16 << 20, Files: []File{{GuestPath: "/etc/shadow"}}}, `guest path "/etc/shadow" is outside /root`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := BuildWorkDisk(context.Background(), tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
			if left := listDir(t, base); !slices.Equal(left, []string{"seed-file"}) {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

func TestBuildWorkDiskCancelled(t *testing.T) {
	base := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := BuildWorkDisk(ctx, WorkDiskSpec{Path: filepath.Join(base, "work.ext4"), SizeBytes: 16 << 20})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled build: %v", err)
	}
	if left := listDir(t, base); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestBuildWorkDiskTrees(t *testing.T) {
	base := t.TempDir()
	ws := filepath.Join(base, "ws")
	tree(t, ws, map[string]string{"README": "hi\n", "bin/run": "#!/bin/sh\n", ".git/HEAD": "ref: refs/heads/banger/dev\n", "link": "->README"},
		map[string]os.FileMode{"bin/run": 0o755})
	spec := WorkDiskSpec{
		Path: filepath.Join(base, "work.ext4"), SizeBytes: 32 << 20,
		Trees: []Tree{{GuestPath: "/root/proj", Dir: ws, Bytes: 64}},
	}
	res, err := BuildWorkDisk(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	wantExt(t, spec.Path, "/root/proj/README", regular|0o644, "hi\n")
	wantExt(t, spec.Path, "/root/proj/bin/run", regular|0o755, "#!/bin/sh\n")
	wantExt(t, spec.Path, "/root/proj/.git/HEAD", regular|0o644, "ref: refs/heads/banger/dev\n")
	if res.CopiedBytes < 64 {
		t.Errorf("CopiedBytes %d does not count the tree", res.CopiedBytes)
	}
	if _, err := os.Lstat(ws); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the tree's directory is still there after the build: %v", err)
	}
}

func TestBuildWorkDiskTreeRefused(t *testing.T) {
	for name, tc := range map[string]struct {
		tree Tree
		sync bool
		want string
	}{
		"too big":     {Tree{GuestPath: "/root/proj", Bytes: 31 << 20}, false, "give the VM a bigger work disk (--disk)"},
		"outside":     {Tree{GuestPath: "/etc/proj"}, false, "outside /root"},
		"path taken":  {Tree{GuestPath: "/root/proj"}, true, "/root/proj exists on the work disk already"},
		"bad dirname": {Tree{GuestPath: "/root/../proj"}, false, "guest path"},
	} {
		t.Run(name, func(t *testing.T) {
			base := t.TempDir()
			home := filepath.Join(base, "home")
			tree(t, home, map[string]string{"proj/x": "x"}, nil)
			ws := filepath.Join(base, "ws")
			tree(t, ws, map[string]string{"f": "f"}, nil)
			tc.tree.Dir = ws
			spec := WorkDiskSpec{Path: filepath.Join(base, "work.ext4"), SizeBytes: 32 << 20, Home: home, Trees: []Tree{tc.tree}}
			if tc.sync {
				spec.Sync = []model.FileSyncEntry{{Host: "~/proj", Guest: "~/proj"}}
			}
			_, err := BuildWorkDisk(context.Background(), spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
			if left := listDir(t, base); !slices.Equal(left, []string{"home"}) {
				t.Errorf("left behind: %v (the tree is the disk's once handed over)", left)
			}
		})
	}
}
