// Package cmdmain is what banger's server programs (bangerd and
// banger-helper) share at start-up: a flag set with --version and the
// same handling of -h, bad flags and stray arguments, and a context that
// ends on SIGTERM or SIGINT.
package cmdmain

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"banger/internal/buildinfo"
)

// Flags is a server program's flag set.
type Flags struct {
	*flag.FlagSet
	name    string
	stderr  io.Writer
	version *bool
}

// NewFlags is the flag set of the program name. usage, when not empty,
// is printed above the flags by -h.
func NewFlags(name, usage string, stderr io.Writer) *Flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &Flags{FlagSet: fs, name: name, stderr: stderr}
	f.version = fs.Bool("version", false, "print the version and exit")
	if usage != "" {
		fs.Usage = func() {
			fmt.Fprint(stderr, usage)
			fs.PrintDefaults()
		}
	}
	return f
}

// Parse parses args. When exit is true the program is done and returns
// code: 0 after -h or --version, 2 after a bad flag or an argument
// (the program takes none).
func (f *Flags) Parse(args []string) (code int, exit bool) {
	if err := f.FlagSet.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, true
		}
		return 2, true
	}
	if f.NArg() > 0 {
		fmt.Fprintf(f.stderr, "%s: unexpected argument %q\n", f.name, f.Arg(0))
		return 2, true
	}
	if *f.version {
		fmt.Fprintf(f.stderr, "%s %s (protocol %d)\n", f.name, buildinfo.Version(), buildinfo.ProtocolVersion)
		return 0, true
	}
	return 0, false
}

// Given reports whether the flag name was set on the command line.
func (f *Flags) Given(name string) bool {
	given := false
	f.Visit(func(fl *flag.Flag) { given = given || fl.Name == name })
	return given
}

// SignalContext is ctx, cancelled on SIGTERM or SIGINT: how a server
// program is asked to stop.
func SignalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
}
