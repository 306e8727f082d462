package opid

import (
	"context"
	"regexp"
	"strings"
	"testing"
)

func TestNewAndContext(t *testing.T) {
	id := New()
	if !regexp.MustCompile(`^op-[0-9a-f]{12}$`).MatchString(id) {
		t.Fatalf("New() = %q", id)
	}
	if New() == id {
		t.Errorf("two ids alike")
	}
	ctx := With(context.Background(), id)
	if From(ctx) != id || From(context.Background()) != "" {
		t.Errorf("From = %q", From(ctx))
	}
	if got := From(Fresh(ctx)); got == id || !Valid(got) {
		t.Errorf("Fresh gave %q", got)
	}
}

func TestValid(t *testing.T) {
	for id, want := range map[string]bool{
		"op-0123456789ab": true, "a.b_c-D": true, "": false,
		strings.Repeat("a", 64): true, strings.Repeat("a", 65): false,
		"op id": false, "op\n": false, `op"`: false,
	} {
		if Valid(id) != want {
			t.Errorf("Valid(%q) = %v", id, !want)
		}
	}
}

func TestTrimSuffix(t *testing.T) {
	for _, tc := range []struct{ msg, id, want string }{
		{"boom (op-1) (op-1)", "op-1", "boom"},
		{"boom (op-2)", "op-1", "boom (op-2)"},
		{"boom (op-1)", "", "boom (op-1)"},
	} {
		if got := TrimSuffix(tc.msg, tc.id); got != tc.want {
			t.Errorf("TrimSuffix(%q, %q) = %q", tc.msg, tc.id, got)
		}
	}
}
