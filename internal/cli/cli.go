// Package cli is the banger command line. It is thin on purpose: it
// parses flags, starts bangerd when needed, calls it over RPC and renders
// tables, progress and --json. It never touches the daemon's state
// directly; an import test keeps it that way.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"banger/internal/errdefs"
	"banger/internal/opid"
	"banger/internal/paths"
	"banger/internal/rpc"
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// app is the state one invocation shares between commands.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	jsonOut    bool
	configPath string
}

// usageError marks a mistake in how banger was invoked (unknown command
// or flag, wrong arguments); it exits with status 2, and the message is
// followed by a pointer to the help of command, when set.
type usageError struct {
	error
	command string
}

func (e usageError) Unwrap() error { return e.error }

// Run executes the banger command line and returns its exit status.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	// A command run for the user said what it had to; banger passes
	// its status on.
	if status, ok := err.(exitStatus); ok {
		return int(status)
	}
	a.printError(err)
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitError
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "banger",
		Short: "Disposable Linux microVMs with your git repository inside",
		Long: `banger boots a disposable Linux microVM with your git repository inside
and drops you into a shell; when you are done, your commits come back as a
branch. The banger CLI talks to bangerd, a per-user daemon it starts on
demand.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	root.PersistentFlags().BoolVar(&a.jsonOut, "json", false, "print machine-readable JSON")
	root.PersistentFlags().StringVar(&a.configPath, "config", "", "config file for a daemon this command starts (default $BANGER_CONFIG or $XDG_CONFIG_HOME/banger/config.toml)")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError{err, cmd.CommandPath()}
	})
	root.AddCommand(a.versionCommand(), a.runCommand(), a.daemonCommand(), a.systemCommand(), a.imageCommand(), a.vmCommand(), a.workspaceCommand(), a.doctorCommand())
	a.addCompletions(root)
	return root
}

// noArgs is cobra.NoArgs reporting a usage error, and naming the
// command when the argument looks like a mistyped subcommand.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.HasSubCommands() {
		return usageError{fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath()), cmd.CommandPath()}
	}
	return usageError{fmt.Errorf("%q takes no arguments, got %q", cmd.CommandPath(), args), cmd.CommandPath()}
}

func (a *app) layout() (paths.Layout, error) {
	return paths.Resolve(a.getenv, a.configPath)
}

// printError prints err once: as text on stderr ("banger: …", ending with
// the op id when the daemon gave one), or with --json as an object that
// always has a code and an op id (see jsonError).
func (a *app) printError(err error) {
	var ue usageError
	isUsage := errors.As(err, &ue)
	if !a.jsonOut {
		fmt.Fprintf(a.stderr, "banger: %v\n", err)
		if isUsage && ue.command != "" {
			fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", ue.command)
		}
		return
	}
	out := struct {
		Error rpc.ErrorResponse `json:"error"`
	}{jsonError(err, isUsage)}
	enc := json.NewEncoder(a.stderr)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}

// jsonError is err as --json reports it. An error the daemon sent keeps
// its code and op id. One that never reached a daemon — a usage mistake,
// a config file that is not there, a daemon that would not start — gets
// "usage" or the code of what it wraps (internal when nothing says), and
// an op id minted here, so that every error has both; no log has that
// id, since nothing else saw the error.
func jsonError(err error, isUsage bool) rpc.ErrorResponse {
	var e rpc.ErrorResponse
	var remote *rpc.ErrorResponse
	if errors.As(err, &remote) {
		e = *remote
	}
	e.Message = err.Error()
	if e.OpID != "" {
		e.Message = strings.TrimSuffix(e.Message, " ("+e.OpID+")")
	} else {
		e.OpID = opid.New()
	}
	switch {
	case isUsage:
		e.Code = "usage"
	case e.Code == "":
		e.Code = errdefs.CodeOf(err)
	}
	return e
}

// printJSON writes v as indented JSON on stdout.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
