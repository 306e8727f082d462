package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"banger/internal/api"
	"banger/internal/model"
	"banger/internal/rpc"
)

func (a *app) workspaceCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "workspace",
		Short: "Put a git repository into a VM, and bring its commits back as a branch",
		Long: `A workspace is a host git repository put into a VM at /root/<repo>, on a new
branch banger/<vm> starting at your HEAD, in one of three modes:

  shallow_overlay  (default) HEAD's commit only (depth 1), with your staged,
                   unstaged and untracked files laid over it exactly, so
                   'git status' in the guest shows what it shows on the host
  full_copy        every commit, branch and tag, and the same working tree
  metadata_only    the git directory alone, no files checked out: run
                   'git sparse-checkout set DIR' or 'git sparse-checkout
                   disable' in the guest to get files

Ignored files (.env, node_modules, build output) never leave the host.
'banger workspace harvest' brings the guest's commits on banger/<vm> back into
your repository as the branch banger/<vm>, touching nothing else.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(a.workspacePrepareCommand(), a.workspaceShowCommand(), a.workspaceHarvestCommand())
	return cmd
}

func (a *app) workspacePrepareCommand() *cobra.Command {
	var mode string
	cmd := &cobra.Command{
		Use:   "prepare VM [PATH]",
		Short: "Copy the git repository PATH is in (default: here) into a running VM",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageError{fmt.Errorf("%q takes a VM name and an optional path, got %d arguments", cmd.CommandPath(), len(args)), cmd.CommandPath()}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := workspacePath(args[1:])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			layout, _, _, err := a.ensureDaemon(ctx)
			if err != nil {
				return err
			}
			p := api.WorkspacePrepareParams{Name: args[0], WorkspaceSpec: api.WorkspaceSpec{Path: path, Mode: mode}}
			var det api.WorkspacePrepareDetail
			if err := a.operate(ctx, layout.SocketPath, api.MethodWorkspacePrepareBegin, p, "preparing a workspace in vm %s", &det); err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(det)
			}
			fmt.Fprintf(a.stdout, "workspace %s is in vm %s at %s on branch %s (%s, %d files, %s)\n",
				det.RepoRoot, p.Name, det.GuestPath, det.BranchName, det.Mode, det.Files, model.HumanBytes(det.Bytes))
			return nil
		},
	}
	cmd.Flags().StringVar(&mode, "mode", "", "shallow_overlay (default), full_copy or metadata_only")
	return cmd
}

// workspacePath is the path a workspace verb was given, absolute; the
// current directory when none was.
func workspacePath(args []string) (string, error) {
	if len(args) == 0 || args[0] == "" {
		return os.Getwd()
	}
	return filepath.Abs(args[0])
}

func (a *app) workspaceShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "show VM",
		Short: "Show where a VM's workspace came from and where it is",
		Args:  exactArgs(1, "VM"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			layout, _, _, err := a.ensureDaemon(ctx)
			if err != nil {
				return err
			}
			var ws model.Workspace
			if err := rpc.Call(ctx, layout.SocketPath, api.MethodWorkspaceShow, api.VMRef{Name: args[0]}, &ws); err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(ws)
			}
			t := newTableNoIndent(a.stdout)
			workspaceRows(t, ws)
			return t.flush()
		},
	}
}

// workspaceRows are a workspace's lines in show's tables.
func workspaceRows(t *table, ws model.Workspace) {
	t.row("repository", ws.RepoRoot)
	t.row("guest path", ws.GuestPath)
	t.row("mode", string(ws.Mode))
	base := shortCommit(ws.BaseCommit)
	if ws.CurrentBranch != "" {
		base += " on " + ws.CurrentBranch
	}
	t.row("branch", fmt.Sprintf("%s (base %s)", ws.BranchName, base))
	t.row("prepared", ws.PreparedAt.Local().Format(time.RFC3339))
	if ws.HarvestedCommit != "" {
		t.row("harvested", fmt.Sprintf("%s at %s", shortCommit(ws.HarvestedCommit), ws.HarvestedAt.Local().Format(time.RFC3339)))
	}
}

func shortCommit(c string) string {
	if len(c) > 7 {
		return c[:7]
	}
	return c
}

func (a *app) workspaceHarvestCommand() *cobra.Command {
	var p api.WorkspaceHarvestParams
	cmd := &cobra.Command{
		Use:   "harvest VM",
		Short: "Bring the VM's commits on banger/<vm> into your repository as that branch",
		Long: `Bring the commits made in the VM on its workspace branch banger/<vm> into the
host repository as the branch of the same name, through a git bundle. Your
working tree, index, current branch, stash and other refs are never touched;
guest hooks never run and what the guest sends is checked (fsck) and bounded
(harvest_max_bundle_size). A host banger/<vm> that has commits the guest's
does not is refused unless --force. Uncommitted work left in the guest is
reported; --wip commits it first as one commit.`,
		Args: exactArgs(1, "VM"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p.Name = args[0]
			ctx := cmd.Context()
			layout, _, _, err := a.ensureDaemon(ctx)
			if err != nil {
				return err
			}
			res, err := a.harvest(ctx, layout.SocketPath, p)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(res)
			}
			printHarvest(a.stdout, res)
			return nil
		},
	}
	cmd.Flags().BoolVar(&p.Force, "force", false, "replace a host branch banger/<vm> that is not an ancestor of the guest's")
	cmd.Flags().BoolVar(&p.WIP, "wip", false, "commit the guest's uncommitted work first, as one commit")
	return cmd
}

func (a *app) harvest(ctx context.Context, socket string, p api.WorkspaceHarvestParams) (api.HarvestResult, error) {
	ctx, cancel := context.WithTimeout(ctx, api.HarvestLimit)
	defer cancel()
	var res api.HarvestResult
	err := rpc.Call(ctx, socket, api.MethodWorkspaceHarvest, p, &res)
	return res, err
}

// printHarvest says what a harvest brought, as git log --oneline does.
func printHarvest(w io.Writer, res api.HarvestResult) {
	n := len(res.Commits)
	switch {
	case res.NoOp && n == 0:
		fmt.Fprintf(w, "nothing to harvest: the guest has no commits on %s past the base %s\n", res.Branch, shortCommit(res.Base))
	case res.NoOp:
		fmt.Fprintf(w, "nothing new: branch %s already holds the guest's %s\n", res.Branch, plural(uint64(n), "commit", "commits"))
	default:
		fmt.Fprintf(w, "harvested %s onto branch %s (base %s): git log %s..%s\n", plural(uint64(n), "commit", "commits"), res.Branch, shortCommit(res.Base), shortCommit(res.Base), res.Branch)
	}
	for _, c := range res.Commits {
		fmt.Fprintf(w, "  %s %s\n", shortCommit(c.Hash), c.Subject)
	}
	if res.Truncated {
		fmt.Fprintln(w, "  ...")
	}
	if res.WIPCommitted {
		fmt.Fprintln(w, "the guest's uncommitted work came as one WIP commit")
	}
	switch {
	case res.Stray == -1:
		fmt.Fprintf(w, "vm %s could not say whether it has commits off %s (on other branches, a detached HEAD or the stash)\n", res.VM, res.Branch)
	case res.Stray > 0:
		fmt.Fprintf(w, "vm %s has %s off %s (on other branches, a detached HEAD or the stash) that a harvest does not bring: put them on %s there\n",
			res.VM, plural(uint64(res.Stray), "commit", "commits"), res.Branch, res.Branch)
	}
	switch {
	case res.Unsaved == -1:
		fmt.Fprintf(w, "vm %s could not say whether it has work not committed (git status failed there)\n", res.VM)
	case res.Unsaved > 0:
		fmt.Fprintf(w, "%s changed in vm %s and not committed: commit there, or harvest with --wip\n", plural(uint64(res.Unsaved), "file", "files"), res.VM)
	case res.Uncommitted > 0:
		fmt.Fprintf(w, "%s uncommitted in vm %s, all from your own work tree (nothing new there)\n", plural(uint64(res.Uncommitted), "file", "files"), res.VM)
	}
}
