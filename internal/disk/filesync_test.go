package disk

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"banger/internal/model"
)

// TestFileSyncErrors: each entry that must fail the create does, with a
// message naming the entry and what is wrong, and leaves no work disk
// and no staging tree — nothing of it, or of any entry, is copied.
func TestFileSyncErrors(t *testing.T) {
	base := t.TempDir()
	home, outside, absDir := filepath.Join(base, "home"), filepath.Join(base, "outside"), filepath.Join(base, "abs")
	tree(t, outside, map[string]string{"secret": "private key\n", "dir/f": "f\n"}, nil)
	tree(t, home, map[string]string{
		"ok.txt":         "ok\n",
		"evil":           "->" + outside + "/secret",
		"evil-dir":       "->../outside/dir",
		"dir/fine.txt":   "fine\n",
		"dir/z-bad":      "->" + outside + "/secret",
		"loop/a.txt":     "a\n",
		"loop/again":     "->..",
		"loop2/sub/back": "->../../loop2",
		"self":           "->.",
		"clean/f":        "f\n",
	}, nil)
	tree(t, absDir, map[string]string{"data/f": "f\n", "data/up": "->../other.txt", "other.txt": "other\n"}, nil)
	big := filepath.Join(home, "big.img")
	writeSparse(t, big, 32<<20, nil)

	for _, tc := range []struct {
		name  string
		entry model.FileSyncEntry
		home  string
		want  string
	}{
		{"symlink out of home", model.FileSyncEntry{Host: "~/evil", Guest: "~/evil"}, home,
			"file_sync[1] (~/evil → ~/evil): " + home + "/evil resolves to " + outside + "/secret, outside the home directory " + home + "; refusing to copy it"},
		{"symlinked dir out of home", model.FileSyncEntry{Host: "~/evil-dir", Guest: "~/d"}, home,
			"file_sync[1] (~/evil-dir → ~/d): " + home + "/evil-dir resolves to " + outside + "/dir, outside the home directory " + home + "; refusing to copy it"},
		{"symlink in a dir out of home", model.FileSyncEntry{Host: "~/dir", Guest: "~/dir"}, home,
			"file_sync[1] (~/dir → ~/dir): symlink " + home + "/dir/z-bad leads to " + outside + "/secret, outside " + home + "; refusing to copy the entry"},
		{"symlink in an absolute dir in the home out of it", model.FileSyncEntry{Host: home + "/dir", Guest: "/root/dir"}, home,
			"file_sync[1] (" + home + "/dir → /root/dir): symlink " + home + "/dir/z-bad leads to " + outside + "/secret, outside " + home + "; refusing to copy the entry"},
		{"absolute file outside the home", model.FileSyncEntry{Host: outside + "/secret", Guest: "~/secret"}, home,
			"file_sync[1] (" + outside + "/secret → ~/secret): host path \"" + outside + "/secret\" is outside the home directory " + home + "; use ~/PATH or an absolute path inside " + home},
		{"absolute dir outside the home", model.FileSyncEntry{Host: absDir + "/data", Guest: "/root/data"}, home,
			"file_sync[1] (" + absDir + "/data → /root/data): host path \"" + absDir + "/data\" is outside the home directory " + home + "; use ~/PATH or an absolute path inside " + home},
		{"absolute, missing and outside the home", model.FileSyncEntry{Host: base + "/absent", Guest: "~/absent"}, home,
			"file_sync[1] (" + base + "/absent → ~/absent): host path \"" + base + "/absent\" is outside the home directory " + home},
		{"absolute escaping the home", model.FileSyncEntry{Host: home + "/../outside/secret", Guest: "~/s"}, home,
			"host path \"" + home + "/../outside/secret\" means " + outside + "/secret, outside the home directory " + home},
		{"/etc/passwd", model.FileSyncEntry{Host: "/etc/passwd", Guest: "~/passwd"}, home,
			"file_sync[1] (/etc/passwd → ~/passwd): host path \"/etc/passwd\" is outside the home directory " + home},
		{"symlink to the home itself", model.FileSyncEntry{Host: "~/self", Guest: "~/h"}, home,
			"file_sync[1] (~/self → ~/h): " + home + "/self resolves to the home directory itself; refusing to copy all of it"},
		{"symlink loop", model.FileSyncEntry{Host: "~/loop", Guest: "~/loop"}, home,
			"file_sync[1] (~/loop → ~/loop): symlink " + home + "/loop/again leads to " + home + ", which contains it: a loop"},
		{"deeper symlink loop", model.FileSyncEntry{Host: "~/loop2", Guest: "~/loop2"}, home,
			"file_sync[1] (~/loop2 → ~/loop2): symlink " + home + "/loop2/sub/back leads to " + home + "/loop2, which contains it: a loop"},
		{"host relative", model.FileSyncEntry{Host: "ok.txt", Guest: "~/ok.txt"}, home,
			`file_sync[1] (ok.txt → ~/ok.txt): host path "ok.txt" is relative; use ~/PATH or an absolute path inside ` + home},
		{"host relative escaping", model.FileSyncEntry{Host: "../outside/secret", Guest: "~/s"}, home,
			`file_sync[1] (../outside/secret → ~/s): host path "../outside/secret" is relative; use ~/PATH or an absolute path inside ` + home},
		{"host leaving home", model.FileSyncEntry{Host: "~/../outside/secret", Guest: "~/s"}, home,
			`file_sync[1] (~/../outside/secret → ~/s): host path "~/../outside/secret" means ` + outside + `/secret, outside the home directory ` + home},
		{"host the whole home", model.FileSyncEntry{Host: "~/", Guest: "~/h"}, home,
			`file_sync[1] (~/ → ~/h): host path "~/" is the whole home directory ` + home + `; name a file or directory inside it`},
		{"host ~user", model.FileSyncEntry{Host: "~bob/x", Guest: "~/x"}, home,
			`host path "~bob/x" names another user's home: only ~/ (host_home_dir) is expanded, not ~user`},
		{"no home configured", model.FileSyncEntry{Host: "~/ok.txt", Guest: "~/ok.txt"}, "",
			`file_sync[0] (~/ok.txt → ~/ok.txt): host path "~/ok.txt" needs the home directory, and none is configured (host_home_dir)`},
		{"setuid mode", model.FileSyncEntry{Host: "~/ok.txt", Guest: "~/ok.txt", Mode: "4755"}, home,
			`file_sync[1] (~/ok.txt → ~/ok.txt): mode "4755" has bits beyond 0777: setuid, setgid and sticky are never set by file sync`},
		{"bad mode", model.FileSyncEntry{Host: "~/ok.txt", Guest: "~/ok.txt", Mode: "rw-r--r--"}, home,
			`file_sync[1] (~/ok.txt → ~/ok.txt): mode "rw-r--r--" is not an octal file mode such as "0600"`},
		{"more than the disk holds", model.FileSyncEntry{Host: "~/big.img", Guest: "~/big.img"}, home,
			`file_sync[1] (~/big.img → ~/big.img): it copies more than the 16M work disk holds (counting the seed and the entries before it); sync less, or ask for a bigger work disk`},
		{"a file where a directory goes", model.FileSyncEntry{Host: "~/clean", Guest: "~/ok.txt/dir"}, home,
			`file_sync[1] (~/clean → ~/ok.txt/dir): /root/ok.txt is a regular file on the work disk, not a directory`},
	} {
		t.Run(tc.name, func(t *testing.T) { wantSyncError(t, base, tc.home, tc.entry, tc.want) })
	}
}

// TestFileSyncGuestPathErrors: a guest path guestapi.GuestPath refuses
// fails the create the same way, with its message after the entry's.
func TestFileSyncGuestPathErrors(t *testing.T) {
	base := t.TempDir()
	home := filepath.Join(base, "home")
	tree(t, home, map[string]string{"ok.txt": "ok\n"}, nil)
	for _, tc := range []struct {
		name  string
		entry model.FileSyncEntry
		home  string
		want  string
	}{
		{"guest outside /root", model.FileSyncEntry{Host: "~/ok.txt", Guest: "/etc/passwd"}, home,
			`file_sync[1] (~/ok.txt → /etc/passwd): guest path "/etc/passwd" is outside /root, the only place file sync writes; use ~/PATH or /root/PATH`},
		{"guest ~ leaving /root", model.FileSyncEntry{Host: "~/ok.txt", Guest: "~/../etc/cron.d/x"}, home,
			`file_sync[1] (~/ok.txt → ~/../etc/cron.d/x): guest path "~/../etc/cron.d/x" is outside /root, the only place file sync writes; use ~/PATH or /root/PATH`},
		{"guest /root/..", model.FileSyncEntry{Host: "~/ok.txt", Guest: "/root/../root2/x"}, home,
			`file_sync[1] (~/ok.txt → /root/../root2/x): guest path "/root/../root2/x" is outside /root, the only place file sync writes; use ~/PATH or /root/PATH`},
		{"guest /root itself", model.FileSyncEntry{Host: "~/ok.txt", Guest: "/root"}, home,
			`file_sync[1] (~/ok.txt → /root): guest path "/root" is /root itself (root's home); name a file or directory inside it; use ~/PATH or /root/PATH`},
		{"guest relative", model.FileSyncEntry{Host: "~/ok.txt", Guest: "ok.txt"}, home,
			`file_sync[1] (~/ok.txt → ok.txt): guest path "ok.txt" is relative; use ~/PATH or /root/PATH`},
		{"guest bare ~", model.FileSyncEntry{Host: "~/ok.txt", Guest: "~"}, home,
			`file_sync[1] (~/ok.txt → ~): guest path "~" is /root itself (root's home); name a file or directory inside it; use ~/PATH or /root/PATH`},
		{"guest ~user", model.FileSyncEntry{Host: "~/ok.txt", Guest: "~bob/x"}, home,
			`file_sync[1] (~/ok.txt → ~bob/x): guest path "~bob/x" names another user's home: only ~ (/root, root's home) is expanded, not ~user; use ~/PATH or /root/PATH`},
		{"guest empty", model.FileSyncEntry{Host: "~/ok.txt", Guest: ""}, home,
			`file_sync[1] (~/ok.txt → ): guest path is empty; use ~/PATH or /root/PATH`},
		{"guest NUL", model.FileSyncEntry{Host: "~/ok.txt", Guest: "~/a\x00b"}, home,
			`guest path "~/a\x00b" contains a NUL byte; use ~/PATH or /root/PATH`},
	} {
		t.Run(tc.name, func(t *testing.T) { wantSyncError(t, base, tc.home, tc.entry, tc.want) })
	}
}

// wantSyncError builds a work disk in base/out syncing ~/ok.txt and then
// entry, and checks that it fails with an error containing want and
// leaves nothing behind.
func wantSyncError(t *testing.T, base, home string, entry model.FileSyncEntry, want string) {
	t.Helper()
	out := filepath.Join(base, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(out)
	_, err := BuildWorkDisk(context.Background(), WorkDiskSpec{
		Path: filepath.Join(out, "work.ext4"), SizeBytes: 16 << 20, Home: home,
		Sync: []model.FileSyncEntry{{Host: "~/ok.txt", Guest: "~/ok.txt"}, entry},
	})
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error:\n  %v\nwant one containing:\n  %s", err, want)
	}
	if left := listDir(t, out); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestPlanSyncCopiesNothingOfARefusedEntry: the check happens before
// any copying, so even the good files of a directory with one bad
// symlink in it are never read.
func TestPlanSyncCopiesNothingOfARefusedEntry(t *testing.T) {
	base := t.TempDir()
	home := filepath.Join(base, "home")
	tree(t, home, map[string]string{"dir/a-good.txt": "good\n", "dir/b-bad": "->/etc/passwd"}, nil)
	e, err := planSync(0, model.FileSyncEntry{Host: "~/dir", Guest: "~/dir"}, home, 1<<30, 1<<30)
	if err == nil || e != nil {
		t.Fatalf("planSync = %v, %v; want an error and no plan", e, err)
	}
}

// TestFileSyncWarnings: what is skipped is reported and the disk made.
func TestFileSyncWarnings(t *testing.T) {
	base := t.TempDir()
	home := filepath.Join(base, "home")
	tree(t, home, map[string]string{"dangling": "->nowhere", "dir/dangling": "->../nowhere", "dir/f": "f\n"}, nil)
	if err := syscall.Mkfifo(filepath.Join(home, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := BuildWorkDisk(context.Background(), WorkDiskSpec{
		Path: filepath.Join(base, "work.ext4"), SizeBytes: 16 << 20, Home: home,
		Sync: []model.FileSyncEntry{
			{Host: "~/missing/file", Guest: "~/file"},
			{Host: "~/dangling", Guest: "~/dangling"},
			{Host: "~/fifo", Guest: "~/fifo"},
			{Host: "~/dir", Guest: "~/dir"},
			{Host: filepath.Join(home, "absent"), Guest: "~/absent"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"file_sync[0] (~/missing/file → ~/file): " + home + "/missing/file does not exist on the host; skipped",
		"file_sync[1] (~/dangling → ~/dangling): " + home + "/dangling is a symlink to nothing; skipped",
		"file_sync[2] (~/fifo → ~/fifo): " + home + "/fifo is a named pipe; skipped",
		"file_sync[3] (~/dir → ~/dir): " + home + "/dir/dangling is a symlink to nothing; skipped",
		"file_sync[4] (" + home + "/absent → ~/absent): " + home + "/absent does not exist on the host; skipped",
	}
	if !slices.Equal(res.Warnings, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(res.Warnings, "\n"), strings.Join(want, "\n"))
	}
	wantExt(t, filepath.Join(base, "work.ext4"), "/root/dir/f", regular|0o600, "f\n")
	for _, p := range []string{"/root/file", "/root/dangling", "/root/fifo", "/root/dir/dangling", "/root/absent"} {
		wantNoExt(t, filepath.Join(base, "work.ext4"), p)
	}
}

func TestGuestRel(t *testing.T) {
	for in, want := range map[string]string{
		"~/x":              "x",
		"~/a/b/../c":       "a/c",
		"/root/.ssh/k":     ".ssh/k",
		"/root//x/":        "x",
		"/root/./y":        "y",
		"~//z":             "z",
		"/root/a/../../..": "",
		"/rootfs/x":        "",
		"/":                "",
		"":                 "",
		"~":                "",
		"~/":               "",
		"~bob/x":           "",
		"~/a/..":           "",
	} {
		got, err := guestRel(in)
		if (err != nil) != (want == "") || got != want {
			t.Errorf("guestRel(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
