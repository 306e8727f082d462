package vms

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"banger/internal/api"
	"banger/internal/model"
)

// statesIn lists every "state" key in a JSON document, by path.
func statesIn(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("reply is not JSON: %v\n%s", err, raw)
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

// oneState: the states found are the record's and its runtime mirror's,
// under prefix, both want.
func oneState(found map[string]any, prefix string, want model.VMState) bool {
	return len(found) == 2 && found[prefix+".state"] == string(want) && found[prefix+".runtime.state"] == string(want)
}

// TestVerbRepliesHaveOneState: the reply of every verb, as the wire
// carries it (create's as its operation's result), says one state for a
// VM — at the top and in the seed's mirror of it, runtime.state, alike —
// and says what the store then holds: a stop's reply is not "stopped"
// outside and "running" inside.
func TestVerbRepliesHaveOneState(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	check := func(verb string, reply any, want model.VMState) {
		t.Helper()
		raw, err := json.Marshal(reply)
		if err != nil {
			t.Fatal(err)
		}
		if got := statesIn(t, raw); !oneState(got, "", want) {
			t.Errorf("%s: reply's states %v, want .state and .runtime.state = %q, and no other", verb, got, want)
		}
		if row := e.vm("one"); row.State != want {
			t.Errorf("%s: reply says %q, the store %q", verb, want, row.State)
		}
	}

	req := e.req("one")
	det, op, err := e.create(req)
	if err != nil {
		t.Fatal(err)
	}
	check("create", det, model.VMStateRunning)
	check("create (operation result)", json.RawMessage(op.Result), model.VMStateRunning)

	steps := []struct {
		verb string
		do   func() (api.VMDetail, error)
		want model.VMState
	}{
		{"stop", func() (api.VMDetail, error) { return e.s.Stop(ctx, api.VMStopParams{Name: "one"}) }, model.VMStateStopped},
		{"stop again", func() (api.VMDetail, error) { return e.s.Stop(ctx, api.VMStopParams{Name: "one"}) }, model.VMStateStopped},
		{"set", func() (api.VMDetail, error) {
			n := 2
			return e.s.Set(ctx, model.VMSetRequest{IDOrName: "one", VCPUCount: &n})
		}, model.VMStateStopped},
		{"start", func() (api.VMDetail, error) { return e.s.Start(ctx, "one") }, model.VMStateRunning},
		{"show", func() (api.VMDetail, error) { return e.s.Show(ctx, "one") }, model.VMStateRunning},
		{"touch", func() (api.VMDetail, error) { return e.s.Touch(ctx, "one") }, model.VMStateRunning},
		{"restart", func() (api.VMDetail, error) { return e.s.Restart(ctx, api.VMStopParams{Name: "one"}) }, model.VMStateRunning},
		{"set nat live", func() (api.VMDetail, error) {
			on := true
			return e.s.Set(ctx, model.VMSetRequest{IDOrName: "one", NATEnabled: &on})
		}, model.VMStateRunning},
	}
	for _, st := range steps {
		det, err := st.do()
		if err != nil {
			t.Fatalf("%s: %v", st.verb, err)
		}
		check(st.verb, det, st.want)
	}

	list, err := e.s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(list)
	if got := statesIn(t, raw); !oneState(got, "[0]", model.VMStateRunning) {
		t.Errorf("ls: reply's states %v, want [0].state and [0].runtime.state = running, and no other", got)
	}
	det, err = e.s.Remove(ctx, removeParams("one", true))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = json.Marshal(det)
	if got := statesIn(t, raw); !oneState(got, "", model.VMStateRunning) {
		t.Errorf("rm: reply's states %v, want .state and .runtime.state = running (what it was), and no other", got)
	}
}
