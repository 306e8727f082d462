package cli

import (
	"context"
	"fmt"

	"banger/internal/api"
	"banger/internal/rpc"
)

// runSummary is what banger run prints with --json, at the end,
// whatever happened.
type runSummary struct {
	VM         string             `json:"vm"`
	ExitStatus int                `json:"exit_status"`
	Harvest    *api.HarvestResult `json:"harvest,omitempty"`
	Removed    bool               `json:"removed"`
	Kept       string             `json:"kept,omitempty"`  // why the VM was kept
	Error      string             `json:"error,omitempty"` // what went wrong after the command
}

// finishRun harvests the VM's workspace and removes the VM, unless it
// must be kept: --keep, a harvest that failed or was interrupted, or
// work the harvest cannot bring. An interrupt during the harvest stops
// it (the VM is then kept, and banger says how to finish by hand); one
// that came before, during the command, does not count.
func (a *app) finishRun(socket, vm string, o runOptions, code int) error {
	ctx, stop := secondInterrupt()
	defer stop()
	sum := runSummary{VM: vm, ExitStatus: code}
	err := a.harvestAndRemove(ctx, socket, vm, o, &sum)
	if a.jsonOut {
		if err != nil {
			sum.Error = err.Error()
		}
		if perr := a.printJSON(sum); perr != nil {
			return perr
		}
	}
	switch {
	case err != nil:
		return exitStatus(max(code, 1))
	case code != 0:
		return exitStatus(code)
	}
	return nil
}

func (a *app) harvestAndRemove(ctx context.Context, socket, vm string, o runOptions, sum *runSummary) error {
	res, err := a.harvest(ctx, socket, api.WorkspaceHarvestParams{Name: vm, WIP: o.wip})
	if err != nil {
		sum.Kept = "the harvest failed"
		fmt.Fprintf(a.stderr, "banger: harvest of vm %s failed: %v\n", vm, err)
		fmt.Fprintf(a.stderr, "vm %s is kept with its commits: harvest again with 'banger workspace harvest %s', then remove it with 'banger vm rm --force %s'\n", vm, vm, vm)
		return err
	}
	sum.Harvest = &res
	if !a.jsonOut {
		printHarvest(a.stderr, res)
	}
	switch {
	case o.keep:
		sum.Kept = "--keep"
		if !a.jsonOut {
			fmt.Fprintf(a.stderr, "kept vm %s: 'banger vm ssh %s' to go back, 'banger vm rm --force %s' when done\n", vm, vm, vm)
		}
		return nil
	case res.Unsaved != 0 || res.Stray != 0:
		sum.Kept = "it holds work the harvest does not bring"
		if !a.jsonOut {
			fmt.Fprintf(a.stderr, "vm %s is kept, so what is in it and nowhere else is not lost (above); 'banger workspace harvest [--wip] %s' once it is on %s, then 'banger vm rm --force %s'\n",
				vm, vm, res.Branch, vm)
		}
		return nil
	}
	if err := rpc.Call(ctx, socket, api.MethodVMRemove, api.VMRemoveParams{Name: vm, Force: true}, nil); err != nil {
		sum.Kept = "its removal failed"
		fmt.Fprintf(a.stderr, "banger: remove vm %s: %v\n", vm, err)
		return err
	}
	sum.Removed = true
	if !a.jsonOut {
		fmt.Fprintf(a.stderr, "removed vm %s (--keep keeps it)\n", vm)
	}
	return nil
}
