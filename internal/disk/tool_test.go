package disk

import (
	"os"
	"testing"
)

func TestToolFindsSbinPrograms(t *testing.T) {
	t.Setenv("PATH", "/nonexistent")
	if _, err := os.Stat("/usr/sbin/mkfs.ext4"); err == nil {
		if got := Tool("mkfs.ext4"); got != "/usr/sbin/mkfs.ext4" && got != "/sbin/mkfs.ext4" {
			t.Errorf("Tool(mkfs.ext4) = %q with an empty PATH", got)
		}
	}
	if got := Tool("no-such-program-banger"); got != "no-such-program-banger" {
		t.Errorf("Tool of a missing program = %q, want the bare name", got)
	}
}
