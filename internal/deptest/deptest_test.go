// Package deptest enforces banger's import rules: the CLI is a thin
// client that never links daemon internals, only the root helper links
// the host-networking code, and only bangerd links the daemon.
package deptest

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// cliAllowed is every banger package the banger binary may link. Adding
// to it is a design decision: the CLI talks to bangerd over RPC and must
// not reach the store, the VMMs or the host directly.
var cliAllowed = []string{
	"banger/cmd/banger",
	"banger/internal/api",
	"banger/internal/buildinfo",
	"banger/internal/cli",
	"banger/internal/errdefs",
	"banger/internal/helperapi",
	"banger/internal/lockfile",
	"banger/internal/model",
	"banger/internal/paths",
	"banger/internal/rpc",
}

// restricted maps a package to the only packages allowed to import it,
// directly or through others.
var restricted = map[string][]string{
	// The code that changes host networking and makes block devices runs
	// as root, in the helper.
	"banger/internal/hostnet":  {"banger/internal/helper", "banger/cmd/banger-helper"},
	"banger/internal/hostdisk": {"banger/internal/helper", "banger/cmd/banger-helper"},
	"banger/internal/helper":   {"banger/cmd/banger-helper"},
	// The daemon's wiring point is imported by its main only.
	"banger/internal/daemon": {"banger/cmd/bangerd"},
}

// goList runs `go list args...` at the module root and returns its
// output lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = "/usr/local/go/bin/go"
	}
	cmd := exec.Command(gobin, append([]string{"list"}, args...)...)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list %v: %v\n%s", args, err, ee.Stderr)
		}
		t.Fatalf("go list %v: %v", args, err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func TestCLILinksOnlyClientPackages(t *testing.T) {
	for _, pkg := range goList(t, "-deps", "./cmd/banger") {
		if strings.HasPrefix(pkg, "banger/") && !slices.Contains(cliAllowed, pkg) {
			t.Errorf("cmd/banger links %s; the CLI may only link %v", pkg, cliAllowed)
		}
	}
}

// guestAllowed is every banger package the guest program may link: it
// runs inside every VM, as PID 1 of the initramfs, and stays small.
var guestAllowed = []string{
	"banger/cmd/banger-guest",
	"banger/internal/guest",
	"banger/internal/guestapi",
}

func TestGuestLinksOnlyGuestPackages(t *testing.T) {
	for _, pkg := range goList(t, "-deps", "./cmd/banger-guest") {
		if strings.HasPrefix(pkg, "banger/") && !slices.Contains(guestAllowed, pkg) {
			t.Errorf("cmd/banger-guest links %s; the guest program may only link %v", pkg, guestAllowed)
		}
	}
}

func TestRestrictedPackages(t *testing.T) {
	// One line per package: its path, then all its transitive imports.
	for _, line := range goList(t, "-f", `{{.ImportPath}} {{join .Deps " "}}`, "./...") {
		fields := strings.Fields(line)
		pkg, deps := fields[0], fields[1:]
		for target, allowed := range restricted {
			if pkg == target || !slices.Contains(deps, target) || slices.Contains(allowed, pkg) {
				continue
			}
			t.Errorf("%s depends on %s, which only %v may import", pkg, target, allowed)
		}
	}
}
