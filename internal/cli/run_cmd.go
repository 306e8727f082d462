package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"banger/internal/api"
	"banger/internal/errdefs"
	"banger/internal/model"
	"banger/internal/rpc"
)

// exitStatus is the exit status of a command banger ran for the user,
// which becomes banger's own; it prints nothing.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// runOptions are banger run's own flags.
type runOptions struct {
	keep, wip bool
}

func (a *app) runCommand() *cobra.Command {
	c := &createFlags{nameDoc: "VM name, a DNS label (default <repo>-<4 hex>)"}
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run [PATH] [-- COMMAND...]",
		Short: "Your repository in a new VM, a shell (or COMMAND) there, your commits back as a branch",
		Long: `Create a VM with the git repository PATH is in (default: the current directory)
at /root/<repo> on a new branch banger/<vm>, open a shell there (or run
COMMAND, with a terminal when stdin is one), then harvest the commits made on
banger/<vm> into your repository as that branch and remove the VM.

The default image is built first if it does not exist. COMMAND's exit status
becomes banger's. Ctrl-C in the shell goes to the guest. If banger run itself
is interrupted (SIGINT, SIGTERM), it ends the guest command and still
harvests; an interrupt during the harvest stops it. When the harvest fails,
the VM is kept and banger says how to harvest it again; work the harvest
cannot bring — changed and not committed, or committed off banger/<vm> —
keeps the VM too (--wip brings uncommitted work as one commit). --keep keeps
the VM in any case.`,
		Args: runArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.run(cmd, args, c, o)
		},
	}
	f := cmd.Flags()
	c.register(f)
	f.BoolVar(&o.keep, "keep", false, "keep the VM after harvesting")
	f.BoolVar(&o.wip, "wip", false, "commit work left uncommitted in the guest as one WIP commit, and harvest it")
	return cmd
}

// runArgs allows one PATH before "--" and needs a command after it.
func runArgs(cmd *cobra.Command, args []string) error {
	dash := cmd.ArgsLenAtDash()
	before := len(args)
	if dash >= 0 {
		before = dash
		if dash == len(args) {
			return usageError{fmt.Errorf("%q: nothing after --; give a command, or leave out -- for a shell", cmd.CommandPath()), cmd.CommandPath()}
		}
	}
	if before > 1 {
		return usageError{fmt.Errorf("%q takes one PATH, got %q (put the command after --)", cmd.CommandPath(), args[:before]), cmd.CommandPath()}
	}
	return nil
}

func (a *app) run(cmd *cobra.Command, args []string, c *createFlags, o runOptions) error {
	pathArgs, command := args, []string(nil)
	if dash := cmd.ArgsLenAtDash(); dash >= 0 {
		pathArgs, command = args[:dash], args[dash:]
	}
	path, err := workspacePath(pathArgs)
	if err != nil {
		return err
	}
	c.workspace = path
	p, err := c.params(cmd)
	if err != nil {
		return err
	}
	// Which signal interrupted banger run decides its exit status.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx := cmd.Context()
	layout, _, _, err := a.ensureDaemon(ctx)
	if err != nil {
		return err
	}
	socket := layout.SocketPath
	if p.Image == "" {
		if err := a.ensureDefaultImage(ctx, socket); err != nil {
			return err
		}
	}
	det, err := a.createVM(ctx, socket, p)
	if err != nil {
		return err
	}
	if det, err = a.vmDetail(context.WithoutCancel(ctx), det.Name); err != nil || det.Workspace == nil {
		return errors.Join(fmt.Errorf("vm %s was made, but its workspace cannot be found; see 'banger vm show %s'", det.Name, det.Name), err)
	}
	code, runErr := 0, error(nil)
	if ctx.Err() == nil {
		code, runErr = a.runInGuest(ctx, det.Name, det.Workspace.GuestPath, command)
	}
	select {
	case sig := <-sigs:
		code = 128 + int(sig.(syscall.Signal))
	default:
	}
	finishErr := a.finishRun(socket, det.Name, o, code)
	if runErr != nil {
		return errors.Join(runErr, finishErr)
	}
	return finishErr
}

// ensureDefaultImage builds the default image when there is none yet.
func (a *app) ensureDefaultImage(ctx context.Context, socket string) error {
	var img api.ImageDetail
	err := rpc.Call(ctx, socket, api.MethodImageShow, api.ImageRef{}, &img)
	if !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	fmt.Fprintln(a.stderr, "the default image does not exist yet: building it first (a few minutes, once)")
	var op model.Operation
	if err := rpc.Call(ctx, socket, api.MethodImageBuildBegin, api.ImageBuildParams{}, &op); err != nil {
		return err
	}
	// Its summary goes with banger's other lines, off stdout.
	return a.finishImageBuild(ctx, socket, op, a.stderr)
}
