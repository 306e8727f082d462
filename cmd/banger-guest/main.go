// Command banger-guest is the program banger puts in every guest image:
// the initramfs's /init and the early-boot setup service. See
// internal/guest.
package main

import (
	"os"

	"banger/internal/guest"
)

func main() {
	os.Exit(guest.Main(os.Args, os.Stdout, os.Stderr))
}
