package errdefs

import (
	"errors"
	"fmt"
	"testing"
)

func TestMark(t *testing.T) {
	base := errors.New("the host has no default route")
	err := Mark(ErrUnavailable, base)
	if err.Error() != "the host has no default route" {
		t.Errorf("Mark changed the message: %q", err)
	}
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, base) || errors.Is(err, ErrNotFound) {
		t.Errorf("Mark: Is does not hold as it should")
	}
	if Mark(ErrUnavailable, nil) != nil {
		t.Error("Mark(nil) is not nil")
	}
}

func TestCodeOf(t *testing.T) {
	notFound := fmt.Errorf("image %q: %w", "x", ErrNotFound)
	remote := coded{"unknown_method"}
	for _, tc := range []struct {
		err  error
		want Code
	}{
		{errors.New("boom"), CodeInternal},
		{notFound, CodeNotFound},
		{fmt.Errorf("start: %w", notFound), CodeNotFound},
		{Mark(ErrInvalidArgument, fmt.Errorf("--kernel: %w", notFound)), CodeBadRequest},
		{fmt.Errorf("a: %w: %w", ErrConflict, notFound), CodeConflict},
		{fmt.Errorf("wrapped: %w", remote), "unknown_method"},
		{errors.Join(errors.New("x"), ErrUnavailable), CodeUnavailable},
	} {
		if got := CodeOf(tc.err); got != tc.want {
			t.Errorf("CodeOf(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
	for _, c := range []Code{CodeBadRequest, CodeNotFound, CodeConflict, CodeUnauthorized, CodeUnavailable} {
		if CodeOf(SentinelFor(c)) != c || !c.Known() {
			t.Errorf("%s does not round-trip", c)
		}
	}
	if SentinelFor(CodeInternal) != nil || Code("nope").Known() {
		t.Error("internal has a sentinel, or an unknown code is known")
	}
}

type coded struct{ code Code }

func (c coded) Error() string   { return "remote" }
func (c coded) ErrorCode() Code { return c.code }
