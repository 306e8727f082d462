package cli

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestSystemMessagesNameFilesWritten: under --root every message names
// the file actually written, removed or found — under the root — while
// --json's targets stay the paths the installed system sees.
func TestSystemMessagesNameFilesWritten(t *testing.T) {
	f := newSystemFixture(t)
	hostPath := regexp.MustCompile(`(^|[ (])(/[^ ]*)`)
	check := func(args ...string) {
		t.Helper()
		code, stdout, stderr := f.run(args...)
		if code != exitOK {
			t.Fatalf("%q: exit %d: %s", args, code, stderr)
		}
		for _, line := range strings.Split(stdout, "\n") {
			if strings.HasPrefix(line, "to start bangerd") || strings.HasPrefix(line, "on the target system") {
				continue // commands for the installed system
			}
			for _, m := range hostPath.FindAllStringSubmatch(line, -1) {
				if !strings.HasPrefix(m[2], f.root+"/") {
					t.Errorf("%q: %q names %s, not the file under %s", args, line, m[2], f.root)
				}
			}
		}
	}
	check("install")
	if _, err := os.Stat(f.path("/usr/local/bin/banger")); err != nil {
		t.Fatal(err)
	}
	check("install")
	check("install", "--user", "4202")
	check("uninstall")
	check("uninstall", "--user", "4202")
	check("uninstall")
	f.mustRun("install")
	var rep systemReport
	_, stdout, _ := f.run("--json", "uninstall", "--dry-run")
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	for _, a := range rep.Actions {
		if strings.HasPrefix(a.Target, f.root) {
			t.Errorf("--json target %q is under --root", a.Target)
		}
	}
}
