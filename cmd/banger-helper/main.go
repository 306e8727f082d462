// Command banger-helper is banger's root helper. See internal/helper.
package main

import (
	"context"
	"os"

	"banger/internal/helper"
)

func main() {
	os.Exit(helper.Main(context.Background(), os.Args[1:], os.Stderr))
}
