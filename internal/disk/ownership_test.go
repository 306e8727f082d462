package disk

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"banger/internal/guestapi"
)

// The test binary doubles as an unprivileged daemon: with helperEnv set
// it builds the work disk described in specEnv as whoever runs it, and
// prints the WorkDiskResult as JSON.
const (
	helperEnv    = "BANGER_DISK_TEST_BUILD_WORK_DISK"
	specEnv      = "BANGER_DISK_TEST_SPEC"
	noUnshareEnv = "BANGER_DISK_TEST_NO_UNSHARE"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(buildWorkDiskMain())
	}
	os.Exit(m.Run())
}

func buildWorkDiskMain() int {
	var spec WorkDiskSpec
	if err := json.Unmarshal([]byte(os.Getenv(specEnv)), &spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if os.Getenv(noUnshareEnv) != "" {
		unshareWorks = func() bool { return false }
	}
	res, err := BuildWorkDisk(context.Background(), spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

const nobody = 65534

// asNobody runs argv as uid and gid 65534 with a bare environment.
func asNobody(argv []string, env ...string) *exec.Cmd {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}}
	cmd.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/nonexistent"}, env...)
	cmd.Dir = "/"
	return cmd
}

// TestBuildWorkDiskUnprivileged builds work disks as an unprivileged
// daemon would: with unshare --map-root-user, the disk records the
// daemon's files as root's and the guest has nothing to chown; without
// it, they carry the daemon's uid and the result says the guest must
// chown them.
func TestBuildWorkDiskUnprivileged(t *testing.T) {
	requireRoot(t)
	dir, err := os.MkdirTemp("", "banger-disk-unprivileged-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "disk.test")
	copyExecutable(t, bin)

	// The seed as an unprivileged image build leaves it: the user's own,
	// with a directory the user cannot write in.
	seed := filepath.Join(dir, "seed")
	tree(t, seed, map[string]string{".bashrc": "bashrc\n", "ro/file": "ro\n"}, map[string]os.FileMode{"ro/file": 0o400, "ro": 0o500})
	chownTree(t, seed, nobody)

	for _, tc := range []struct {
		name      string
		env       []string
		ownership Ownership
		uid       int
	}{
		{"unshare", nil, OwnedByRootUnshare, 0},
		{"plain", []string{noUnshareEnv + "=1"}, OwnedByUser, nobody},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.ownership == OwnedByRootUnshare {
				if out, err := asNobody([]string{Tool("unshare"), "--map-root-user", "true"}).CombinedOutput(); err != nil {
					t.Skipf("unshare --map-root-user is not permitted to uid %d here: %v: %s", nobody, err, out)
				}
			}
			out := filepath.Join(dir, "out-"+tc.name)
			if err := os.Mkdir(out, 0o755); err != nil {
				t.Fatal(err)
			}
			chownTree(t, out, nobody)
			spec := WorkDiskSpec{
				Path: filepath.Join(out, "work.ext4"), SizeBytes: 16 << 20, SeedDir: seed,
				Files: []File{{GuestPath: guestapi.AuthorizedKeysPath, Data: []byte("key\n"), Mode: 0o600}},
			}
			js, _ := json.Marshal(spec)
			cmd := asNobody([]string{bin}, append(tc.env, helperEnv+"=1", specEnv+"="+string(js))...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			stdout, err := cmd.Output()
			if err != nil {
				t.Fatalf("BuildWorkDisk as uid %d: %v: %s", nobody, err, stderr.String())
			}
			var res WorkDiskResult
			if err := json.Unmarshal(stdout, &res); err != nil {
				t.Fatalf("result %q: %v", stdout, err)
			}
			if res.Ownership != tc.ownership || res.Ownership.GuestChowns() != (tc.uid != 0) {
				t.Errorf("ownership %q, want %q", res.Ownership, tc.ownership)
			}
			if len(res.Warnings) != 0 {
				t.Errorf("warnings: %v", res.Warnings)
			}
			for _, p := range []string{"/root/.bashrc", "/root/ro", "/root/ro/file", "/root/.ssh", guestapi.AuthorizedKeysPath} {
				e, ok := statExt(t, spec.Path, p)
				if !ok {
					t.Errorf("%s is not on the work disk", p)
				} else if e.UID != tc.uid || e.GID != tc.uid {
					t.Errorf("%s is owned by %d:%d, want %d:%d", p, e.UID, e.GID, tc.uid, tc.uid)
				}
			}
			wantExt(t, spec.Path, "/root/ro", dirType|0o500, "")
			wantExt(t, spec.Path, "/root/ro/file", regular|0o400, "ro\n")
			if left := listDir(t, out); !slices.Equal(left, []string{"work.ext4"}) {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

// copyExecutable puts a copy of the test binary where uid 65534 can run
// it: go test keeps its own in a directory only its user can enter.
func copyExecutable(t *testing.T, dst string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func chownTree(t *testing.T, dir string, id int) {
	t.Helper()
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, id, id)
	})
	if err != nil {
		t.Fatal(err)
	}
}
