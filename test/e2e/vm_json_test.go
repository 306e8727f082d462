package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// jsonStates lists every "state" key of a JSON document by path, and
// the value at the top-level object or at each element of a top-level
// array.
func jsonStates(t *testing.T, verb, out string) map[string]any {
	t.Helper()
	var doc any
	// vm create --json prints its events first, one per line.
	if i := strings.LastIndex(out, "\n{\n"); i >= 0 {
		out = out[i+1:]
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%s --json: %v\n%s", verb, err, out)
	}
	found := map[string]any{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				if k == "state" {
					found[path+"."+k] = child
				}
				walk(path+"."+k, child)
			}
		case []any:
			for i, child := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), child)
			}
		}
	}
	walk("", doc)
	return found
}

// TestVerbsJSONSayOneState: every VM verb's --json reply, for a VM that
// really boots, stops and starts again, says one state (at the top and
// in the seed's mirror of it inside "runtime", alike) and the same state
// vm show says after it. A new user found `vm stop --json` saying "stopped" outside and
// "running" inside.
func TestVerbsJSONSayOneState(t *testing.T) {
	e := newDriverEnv(t, "qemu", "")
	check := func(verb, path, want string, out string) {
		t.Helper()
		if got := jsonStates(t, verb, out); !oneState(got, path, want) {
			t.Errorf("%s --json: states %v, want %s and its runtime mirror = %q, and no other", verb, got, path, want)
		}
		if show := e.show("one"); string(show.State) != want {
			t.Errorf("%s --json said %q, vm show then %q", verb, want, show.State)
		}
	}
	check("vm create", ".state", "running", e.must("--json", "vm", "create", "--name", "one").stdout)
	check("vm stop", "[0].state", "stopped", e.must("--json", "vm", "stop", "one").stdout)
	check("vm set", ".state", "stopped", e.must("--json", "vm", "set", "one", "--memory", "768M").stdout)
	check("vm start", "[0].state", "running", e.must("--json", "vm", "start", "one").stdout)
	check("vm show", ".state", "running", e.must("--json", "vm", "show", "one").stdout)
	check("vm ls", "[0].state", "running", e.must("--json", "vm", "ls").stdout)
	check("vm set (live)", ".state", "running", e.must("--json", "vm", "set", "one", "--nat").stdout)
	out := e.must("--json", "vm", "rm", "--force", "one").stdout
	if got := jsonStates(t, "vm rm", out); !oneState(got, "[0].state", "running") {
		t.Errorf("vm rm --json: states %v, want [0].state and its runtime mirror = running (what it was), and no other", got)
	}
}

// oneState: the states found are the one at path and its mirror in the
// same VM's runtime, both want.
func oneState(found map[string]any, path, want string) bool {
	mirror := strings.TrimSuffix(path, ".state") + ".runtime.state"
	return len(found) == 2 && found[path] == want && found[mirror] == want
}
