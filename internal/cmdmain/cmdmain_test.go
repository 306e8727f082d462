package cmdmain

import (
	"bytes"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		code     int
		exit     bool
		stderr   string
		wantPath string
	}{
		{nil, 0, false, "", ""},
		{[]string{"--config", "/c"}, 0, false, "", "/c"},
		{[]string{"--version"}, 0, true, "prog ", ""},
		{[]string{"-h"}, 0, true, "usage: prog", ""},
		{[]string{"--nope"}, 2, true, "flag provided but not defined: -nope", ""},
		{[]string{"extra"}, 2, true, `prog: unexpected argument "extra"`, ""},
	} {
		var stderr bytes.Buffer
		f := NewFlags("prog", "usage: prog\n", &stderr)
		path := f.String("config", "", "config file")
		code, exit := f.Parse(tc.args)
		if code != tc.code || exit != tc.exit || !strings.Contains(stderr.String(), tc.stderr) || *path != tc.wantPath {
			t.Errorf("Parse(%q) = %d, %v, stderr %q, config %q", tc.args, code, exit, stderr.String(), *path)
		}
		if got := f.Given("config"); got != (tc.wantPath != "") {
			t.Errorf("Parse(%q): Given(config) = %v", tc.args, got)
		}
	}
}
