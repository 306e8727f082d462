package guest

import (
	"errors"
	"fmt"
	"io"
	"os"

	"banger/internal/guestapi"
)

const usage = `usage: banger-guest <command>

Commands:
  setup   apply the kernel command line's banger.* parameters: network,
          hostname, work disk on /root, SSH host key (run by
          ` + guestapi.UnitName + `)
  init    act as the initramfs's /init: load modules, mount the root disk,
          switch root and exec the real init (PID 1 only; run as ` + guestapi.InitPath + `
          it needs no command)
  unit    print the systemd unit that runs setup
`

// Main runs banger-guest with the process's arguments (args[0] is the
// program name) and returns its exit code. Run by the kernel as /init it
// is PID 1 and never returns.
func Main(args []string, stdout, stderr io.Writer) int {
	if os.Getpid() == 1 && len(args) > 0 && args[0] == guestapi.InitPath {
		runInit(args[1:])
	}
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[1] {
	case "setup":
		if len(args) > 2 {
			fmt.Fprintf(stderr, "banger-guest: setup takes no arguments\n")
			return 2
		}
		return setupMain(stderr, linuxSystem{}, "/", "/proc/cmdline")
	case "init":
		if os.Getpid() != 1 {
			fmt.Fprintf(stderr, "banger-guest: init must run as PID 1 (it switches the root filesystem)\n")
			return 2
		}
		runInit(args[2:])
	case "unit":
		fmt.Fprint(stdout, guestapi.Unit)
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "banger-guest: unknown command %q\n\n%s", args[1], usage)
	return 2
}

// setupMain is `banger-guest setup`: it applies the kernel command line
// read from cmdlinePath to sys, whose root filesystem is at root, and
// returns the exit code.
func setupMain(stderr io.Writer, sys system, root, cmdlinePath string) int {
	log := newConsoleLog(stderr)
	cmdline, err := os.ReadFile(cmdlinePath)
	if err == nil {
		err = runSetup(log, sys, root, string(cmdline))
	}
	if err == nil {
		return 0
	}
	// One console line per failed step, each with the prefix the daemon
	// looks for.
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			log.printf("setup failed: %v", e)
		}
	} else {
		log.printf("setup failed: %v", err)
	}
	return 1
}
