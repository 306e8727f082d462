package errdefs

import (
	"errors"
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
