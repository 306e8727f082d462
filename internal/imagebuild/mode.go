package imagebuild

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
)

// Mode is how mmdebstrap gets root inside the tree it builds.
type Mode string

const (
	// ModeRoot: the daemon is root; mmdebstrap chroots directly.
	ModeRoot Mode = "root"
	// ModeUnshare: an unprivileged daemon; mmdebstrap maps root and 65535
	// more ids into a user namespace, from the user's subordinate ids.
	ModeUnshare Mode = "unshare"
)

// DetectMode picks root mode for root and checks that unshare mode can
// work otherwise, saying what to configure when it cannot.
func DetectMode(ctx context.Context) (Mode, error) {
	if os.Geteuid() == 0 {
		return ModeRoot, nil
	}
	u, err := user.Current()
	if err != nil {
		return "", fmt.Errorf("building images as uid %d: who am I: %w", os.Geteuid(), err)
	}
	var problems []string
	if v, err := os.ReadFile("/proc/sys/kernel/unprivileged_userns_clone"); err == nil && strings.TrimSpace(string(v)) == "0" {
		problems = append(problems, "unprivileged user namespaces are off: sudo sysctl -w kernel.unprivileged_userns_clone=1")
	}
	if v, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil && strings.TrimSpace(string(v)) == "0" {
		problems = append(problems, "user namespaces are disabled: sudo sysctl -w user.max_user_namespaces=15000")
	}
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		if n := subordinateIDs(f, u); n < 65536 {
			problems = append(problems, fmt.Sprintf("%s gives %s %d subordinate ids, mmdebstrap needs 65536: sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s", f, u.Username, n, u.Username))
		}
	}
	if len(problems) == 0 {
		// The settings look right; prove it the way mmdebstrap will use it.
		out, err := exec.CommandContext(ctx, "unshare", "--map-root-user", "--map-auto", "true").CombinedOutput()
		if err != nil {
			problems = append(problems, fmt.Sprintf("unshare --map-root-user --map-auto true failed: %v %s (is uidmap installed? sudo apt-get install uidmap)", err, strings.TrimSpace(string(out))))
		}
	}
	if len(problems) > 0 {
		return "", fmt.Errorf("building images as %s (not root) uses mmdebstrap's unshare mode, which cannot work here:\n  - %s",
			u.Username, strings.Join(problems, "\n  - "))
	}
	return ModeUnshare, nil
}

// subordinateIDs counts the ids a /etc/subuid-style file grants u.
func subordinateIDs(path string, u *user.User) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	total := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(parts) != 3 || (parts[0] != u.Username && parts[0] != u.Uid) {
			continue
		}
		if n, err := strconv.Atoi(parts[2]); err == nil {
			total += n
		}
	}
	return total
}

// inNamespace wraps a command so that, in unshare mode, it sees the tree
// mmdebstrap built with the ownership it has inside: root-owned files as
// root's. mkfs.ext4 -d then records them as root's, and rm can remove
// files that belong to subordinate ids.
func (m Mode) inNamespace(name string, args ...string) []string {
	if m == ModeUnshare {
		return append([]string{"unshare", "--map-root-user", "--map-auto", name}, args...)
	}
	return append([]string{name}, args...)
}
