package guest

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"banger/internal/guestapi"
)

const sampleMountinfo = `22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
23 22 0:5 / /dev rw,nosuid shared:2 - devtmpfs devtmpfs rw,size=4k,mode=755
24 22 0:21 / /proc rw,nosuid,nodev,noexec shared:3 - proc proc rw
30 22 254:16 / /root rw,nosuid,nodev shared:9 - ext4 /dev/vdb rw
31 22 0:30 / /mnt/with\040space rw shared:10 - tmpfs tmpfs rw
`

func TestIsMountPoint(t *testing.T) {
	tests := []struct {
		dir  string
		want bool
	}{
		{"/root", true},
		{"/root/", true},
		{"/", true},
		{"/mnt/with space", true},
		{`/mnt/with\040space`, false},
		{"/ro", false},
		{"/root/.ssh", false},
		{"/home", false},
	}
	for _, tt := range tests {
		if got := isMountPoint([]byte(sampleMountinfo), tt.dir); got != tt.want {
			t.Errorf("isMountPoint(%q) = %v, want %v", tt.dir, got, tt.want)
		}
	}
	if isMountPoint(nil, "/root") {
		t.Error("isMountPoint of an empty table")
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/plain`:         "/plain",
		`/a\040b`:        "/a b",
		`/tab\011x`:      "/tab\tx",
		`/back\134slash`: `/back\slash`,
		`/short\04`:      `/short\04`,
		`/not\999octal`:  `/not\999octal`,
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

// workTree makes a home directory as the daemon's work disk has it: made
// by a user with a umask that sshd's StrictModes rejects.
func workTree(t *testing.T) string {
	t.Helper()
	home := filepath.Join(t.TempDir(), "root")
	for _, d := range []string{".ssh", ".banger", "repo/.git/objects"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o775); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Join(home, d), 0o775) // whatever the umask
	}
	for _, f := range []string{".ssh/authorized_keys", ".banger/ssh_host_ed25519_key", "repo/README", "repo/.git/HEAD"} {
		if err := os.WriteFile(filepath.Join(home, f), []byte("x\n"), 0o664); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Join(home, f), 0o664)
	}
	os.Chmod(home, 0o755)
	return home
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestFixSSHModes(t *testing.T) {
	home := workTree(t)
	n, err := fixSSHModes(home)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("changed %d, want 3", n)
	}
	for p, want := range map[string]os.FileMode{
		"":                     0o700,
		".ssh":                 0o700,
		".ssh/authorized_keys": 0o600,
		"repo/README":          0o664, // the user's files keep their modes
	} {
		if got := mode(t, filepath.Join(home, p)); got != want {
			t.Errorf("%s: mode %v, want %v", p, got, want)
		}
	}
	if n, err := fixSSHModes(home); err != nil || n != 0 {
		t.Errorf("second run: %d changes, %v; want none", n, err)
	}
}

func TestFixSSHModesSkipsSymlinksAndMissing(t *testing.T) {
	home := t.TempDir()
	target := t.TempDir()
	os.Chmod(target, 0o755)
	if err := os.Symlink(target, filepath.Join(home, ".ssh")); err != nil {
		t.Fatal(err)
	}
	if _, err := fixSSHModes(home); err != nil {
		t.Fatal(err)
	}
	if got := mode(t, target); got != 0o755 {
		t.Errorf("followed the .ssh symlink: target mode %v", got)
	}
}

func TestFixWorkOwnership(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to chown files to another user and back")
	}
	home := workTree(t)
	// A symlink out of the work disk: chowned itself, its target untouched.
	outside := filepath.Join(t.TempDir(), "outside")
	os.WriteFile(outside, nil, 0o644)
	os.Symlink(outside, filepath.Join(home, "link"))
	const uid, gid = 1000, 1000
	filepath.Walk(home, func(p string, _ os.FileInfo, _ error) error {
		return os.Lchown(p, uid, gid)
	})
	os.Chown(outside, uid, gid)

	n, err := fixWorkOwnership(home)
	if err != nil {
		t.Fatal(err)
	}
	// 6 directories, 4 files and a symlink chowned; 3 modes fixed.
	if n != 14 {
		t.Errorf("changed %d, want 14", n)
	}
	filepath.Walk(home, func(p string, _ os.FileInfo, _ error) error {
		var st unix.Stat_t
		unix.Lstat(p, &st)
		if st.Uid != 0 || st.Gid != 0 {
			t.Errorf("%s owned by %d:%d", p, st.Uid, st.Gid)
		}
		return nil
	})
	var st unix.Stat_t
	unix.Stat(outside, &st)
	if st.Uid != uid {
		t.Errorf("followed a symlink out of the work disk: target owned by %d", st.Uid)
	}
	if n, err := fixWorkOwnership(home); err != nil || n != 0 {
		t.Errorf("second run: %d changes, %v; want none", n, err)
	}
}

// The authorized key fixSSHModes looks after is where the daemon puts it.
func TestAuthorizedKeysOnWorkDisk(t *testing.T) {
	if got := filepath.Join(guestapi.WorkMountPoint, ".ssh", "authorized_keys"); got != guestapi.AuthorizedKeysPath {
		t.Errorf("guestapi.AuthorizedKeysPath = %s, fixSSHModes uses %s", guestapi.AuthorizedKeysPath, got)
	}
}
