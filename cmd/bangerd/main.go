// Command bangerd is banger's per-user daemon. See internal/daemon.
package main

import (
	"context"
	"os"

	"banger/internal/daemon"
)

func main() {
	os.Exit(daemon.Main(context.Background(), os.Args[1:], os.Stderr))
}
