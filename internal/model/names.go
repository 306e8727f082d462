package model

import (
	"fmt"

	"banger/internal/errdefs"
)

// ValidateName checks the name of a VM or an image: a DNS label, since a
// VM's name becomes its hostname and <name>.vm. kind ("vm", "image")
// names the object in the error.
func ValidateName(kind, name string) error {
	ok := name != "" && len(name) <= 63 && name[0] != '-' && name[len(name)-1] != '-'
	for _, c := range name {
		ok = ok && (c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-')
	}
	if !ok {
		return fmt.Errorf("%s name %q is not a DNS label (1-63 of a-z, 0-9 and '-', not starting or ending with '-'): %w",
			kind, name, errdefs.ErrInvalidArgument)
	}
	return nil
}
