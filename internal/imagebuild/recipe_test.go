package imagebuild

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"banger/internal/errdefs"
)

func TestHostMirror(t *testing.T) {
	tests := map[string]string{
		"testdata/apt-deb822":  "http://mirror.example.org/debian",
		"testdata/apt-oneline": "https://ftp.example.net/debian",
		"testdata/apt-none":    "",
		"testdata/missing":     "",
	}
	for dir, want := range tests {
		if got := HostMirror(dir, "bookworm"); got != want {
			t.Errorf("HostMirror(%s) = %q, want %q", dir, got, want)
		}
	}
	if got := HostMirror("testdata/apt-deb822", "trixie"); got != "" {
		t.Errorf("a suite the host does not list: %q", got)
	}
}

func TestRecipeNormalize(t *testing.T) {
	r, size, err := Recipe{Name: "x", Packages: []string{"vim", " curl ", "vim", "git", ""}}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	if r.Suite != "bookworm" || r.Size != "4G" || size != 4<<30 || strings.Join(r.Packages, ",") != "vim,curl" {
		t.Errorf("normalized = %+v (%d)", r, size)
	}
	if got := strings.Join(r.AllPackages(), ","); got != "systemd,systemd-sysv,dbus,openssh-server,iproute2,ca-certificates,git,vim,curl,linux-image-amd64" {
		t.Errorf("AllPackages = %s", got)
	}
	r.KernelPath = "/boot/vmlinux"
	if strings.Contains(strings.Join(r.AllPackages(), ","), "linux-image") {
		t.Error("a recipe with its own kernel still installs the kernel package")
	}
	a, _, _ := Recipe{Name: "a"}.Normalize()
	b, _, _ := Recipe{Name: "b", Size: "4096M"}.Normalize()
	if a.Hash() != b.Hash() {
		t.Error("the same recipe under two names hashes differently")
	}
	c, _, _ := Recipe{Name: "a", Packages: []string{"vim"}}.Normalize()
	if a.Hash() == c.Hash() {
		t.Error("different recipes hash the same")
	}

	for _, tt := range []struct {
		r    Recipe
		want string
	}{
		{Recipe{Suite: "Bookworm"}, "--suite"},
		{Recipe{Suite: "bookworm; rm"}, "--suite"},
		{Recipe{Size: "100M"}, "too small"},
		{Recipe{Size: "4T"}, "--size"},
		{Recipe{Size: "lots"}, "--size"},
		{Recipe{Size: "1.5G"}, `--size "1.5G": "1.5" is not a whole number; use a whole number with K, M or G, e.g. 1536M`},
		{Recipe{Packages: []string{"vim;reboot"}}, "--packages"},
		{Recipe{Packages: []string{"-o=Dpkg::Options"}}, "--packages"},
		{Recipe{Mirror: "ftp://x/debian"}, "--mirror"},
		{Recipe{Mirror: "http://x/debian' --evil"}, "--mirror"},
		{Recipe{InitrdPath: "/x"}, "--initrd needs --kernel"},
	} {
		_, _, err := tt.r.Normalize()
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Normalize(%+v) = %v, want invalid argument about %s", tt.r, err, tt.want)
		}
	}
}

func TestIsProgressLine(t *testing.T) {
	for line, want := range map[string]bool{
		"I: downloading packages with apt...":                   true,
		"I: installing remaining packages inside the chroot...": true,
		"I: running special hook: sync-in /x /y":                false,
		"I: running --setup-hook in shell: sh -c 'mkdir'":       false,
		"I: chroot architecture amd64 is equal to the host's":   false,
		"Get:1 http://deb.debian.org/debian bookworm InRelease": false,
		"W: something": false,
	} {
		if got := isProgressLine(line); got != want {
			t.Errorf("isProgressLine(%q) = %v", line, got)
		}
	}
}

func TestSubordinateIDs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "subuid")
	os.WriteFile(path, []byte("alice:100000:65536\nbob:165536:1000\n1001:200000:65536\nbob:300000:64536\n"), 0o644)
	for _, tt := range []struct {
		u    user.User
		want int
	}{
		{user.User{Username: "alice", Uid: "1000"}, 65536},
		{user.User{Username: "bob", Uid: "1002"}, 65536},   // two ranges
		{user.User{Username: "carol", Uid: "1001"}, 65536}, // by uid
		{user.User{Username: "dave", Uid: "1003"}, 0},
	} {
		if got := subordinateIDs(path, &tt.u); got != tt.want {
			t.Errorf("subordinateIDs(%s) = %d, want %d", tt.u.Username, got, tt.want)
		}
	}
	if subordinateIDs(filepath.Join(t.TempDir(), "missing"), &user.User{Username: "x"}) != 0 {
		t.Error("a missing file grants ids")
	}
}
