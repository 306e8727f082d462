package cli

import (
	"fmt"

	"banger/internal/api"
	"banger/internal/rpc"
)

// runSummary is what banger run prints with --json.
type runSummary struct {
	VM         string             `json:"vm"`
	ExitStatus int                `json:"exit_status"`
	Harvest    *api.HarvestResult `json:"harvest,omitempty"`
	Removed    bool               `json:"removed"`
}

// finishRun harvests the VM's workspace and removes the VM, unless it
// must be kept: --keep, a harvest that failed or was interrupted, or
// work left uncommitted. A second interrupt stops the harvest; the VM
// is then kept, and banger says how to finish by hand.
func (a *app) finishRun(socket, vm string, o runOptions, code int) error {
	ctx, stop := secondInterrupt()
	defer stop()
	sum := runSummary{VM: vm, ExitStatus: code}
	res, err := a.harvest(ctx, socket, api.WorkspaceHarvestParams{Name: vm, WIP: o.wip})
	if err != nil {
		fmt.Fprintf(a.stderr, "banger: harvest of vm %s failed: %v\n", vm, err)
		fmt.Fprintf(a.stderr, "vm %s is kept with its commits: harvest again with 'banger workspace harvest %s', then remove it with 'banger vm rm --force %s'\n", vm, vm, vm)
		return exitStatus(max(code, 1))
	}
	sum.Harvest = &res
	if !a.jsonOut {
		printHarvest(a.stderr, res)
	}
	keep := o.keep
	if res.Unsaved > 0 && !keep {
		keep = true
		if !a.jsonOut {
			fmt.Fprintf(a.stderr, "vm %s is kept, so the %s changed there and not committed are not lost: 'banger workspace harvest --wip %s' brings them as a commit; then 'banger vm rm --force %s'\n",
				vm, plural(uint64(res.Unsaved), "file", "files"), vm, vm)
		}
	}
	if !keep {
		if err := rpc.Call(ctx, socket, api.MethodVMRemove, api.VMRemoveParams{Name: vm, Force: true}, nil); err != nil {
			fmt.Fprintf(a.stderr, "banger: remove vm %s: %v\n", vm, err)
			return exitStatus(max(code, 1))
		}
		sum.Removed = true
		if !a.jsonOut {
			fmt.Fprintf(a.stderr, "removed vm %s (--keep keeps it)\n", vm)
		}
	} else if o.keep && !a.jsonOut {
		fmt.Fprintf(a.stderr, "kept vm %s: 'banger vm ssh %s' to go back, 'banger vm rm --force %s' when done\n", vm, vm, vm)
	}
	if a.jsonOut {
		if err := a.printJSON(sum); err != nil {
			return err
		}
	}
	if code != 0 {
		return exitStatus(code)
	}
	return nil
}
