package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"banger/internal/api"
	"banger/internal/model"
	"banger/internal/rpc"
)

func (a *app) vmCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vm",
		Short: "Create, run, reach and remove microVMs",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(
		a.vmCreateCommand(),
		a.vmStartCommand(),
		a.vmStopCommand("stop", "Stop VMs: power off gracefully, kill after --timeout", api.MethodVMStop),
		a.vmStopCommand("restart", "Stop VMs, then start them again", api.MethodVMRestart),
		a.vmRemoveCommand(),
		a.vmListCommand(),
		a.vmShowCommand(),
		a.vmSetCommand(),
		a.vmEachCommand("touch", "Mark VMs as used now (ssh and exec do it too)", api.MethodVMTouch, nil),
		a.vmSSHCommand(),
		a.vmExecCommand(),
		a.vmLogsCommand(),
	)
	return cmd
}

// vmEachCommand runs method on each named VM and reports each.
func (a *app) vmEachCommand(use, short, method string, params func(name string) any) *cobra.Command {
	return &cobra.Command{
		Use:   use + " NAME...",
		Short: short,
		Args:  minArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.eachVM(cmd.Context(), args, method, func(name string) any {
				if params != nil {
					return params(name)
				}
				return api.VMRef{Name: name}
			}, use, 0)
		},
	}
}

// eachVM calls method for each name in turn. perCall, when set, bounds
// each call instead of the RPC client's default, for verbs that may take
// longer than it.
func (a *app) eachVM(ctx context.Context, names []string, method string, params func(string) any, verb string, perCall time.Duration) error {
	layout, _, _, err := a.ensureDaemon(ctx)
	if err != nil {
		return err
	}
	return a.forEachVM(ctx, names, func(name string) (api.VMDetail, error) {
		var det api.VMDetail
		if doing, slow := slowVerbs[verb]; slow && !a.jsonOut {
			// Say what begins only for a VM that exists: a name that
			// does not is an error at once, not after "stopping it...".
			var found api.VMDetail
			if err := rpc.Call(ctx, layout.SocketPath, api.MethodVMShow, api.VMRef{Name: name}, &found); err != nil {
				return det, err
			}
			fmt.Fprintf(a.stderr, "%s %s...\n", doing, found.Name)
		}
		callCtx, cancel := ctx, context.CancelFunc(func() {})
		if perCall > 0 {
			callCtx, cancel = context.WithTimeout(ctx, perCall)
		}
		defer cancel()
		err := rpc.Call(callCtx, layout.SocketPath, method, params(name), &det)
		return det, err
	})
}

// forEachVM runs do for each name in turn, printing each VM's new state
// (with --json, the VMs done, [] when none); a name that fails is
// reported with the others and the rest still run, unless the command
// was interrupted.
func (a *app) forEachVM(ctx context.Context, names []string, do func(name string) (api.VMDetail, error)) error {
	results := []api.VMDetail{}
	var errs []error
	for _, name := range names {
		det, err := do(name)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		results = append(results, det)
		if !a.jsonOut {
			fmt.Fprintf(a.stdout, "%s: %s\n", det.Name, describeState(det))
		}
	}
	if a.jsonOut {
		if err := a.printJSON(results); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

// slowVerbs take long enough (a guest boots) to say they have begun.
var slowVerbs = map[string]string{"restart": "restarting", "stop": "stopping"}

func describeState(det api.VMDetail) string {
	switch det.State {
	case model.VMStateRunning:
		return "running at " + det.Runtime.GuestIP
	default:
		return string(det.State)
	}
}

func (a *app) vmStopCommand(use, short, method string) *cobra.Command {
	var timeout int
	var force bool
	cmd := &cobra.Command{
		Use:   use + " NAME...",
		Short: short,
		Args:  minArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout < 1 {
				return usageError{fmt.Errorf("--timeout %d: use 1 or more seconds, or --force to kill at once", timeout), cmd.CommandPath()}
			}
			return a.eachVM(cmd.Context(), args, method, func(name string) any {
				return api.VMStopParams{Name: name, TimeoutSeconds: timeout, Force: force}
			}, use, stopCallLimit(use, timeout))
		},
	}
	cmd.Flags().IntVar(&timeout, "timeout", 30, "seconds (1 or more) to wait for a graceful power-off before killing the VMM")
	cmd.Flags().BoolVar(&force, "force", false, "kill the VMM at once")
	return cmd
}

// stopCallLimit is how long a stop (or restart) call may take: the
// graceful timeout, the kill after it, and for a restart the boot too,
// each as long as the daemon allows, and a little over, so the CLI never
// gives up on a stop the daemon is still finishing.
func stopCallLimit(verb string, timeoutSeconds int) time.Duration {
	limit := time.Duration(timeoutSeconds)*time.Second + api.KillLimit + 10*time.Second
	if verb == "restart" {
		limit += api.BootLimit
	}
	return limit
}

func (a *app) vmRemoveCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm NAME...",
		Aliases: []string{"remove"},
		Short:   "Remove VMs and their disks (a running one only with --force)",
		Args:    minArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.eachVMRemove(cmd.Context(), args, force)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "kill and remove running VMs too")
	return cmd
}

func (a *app) eachVMRemove(ctx context.Context, names []string, force bool) error {
	layout, _, _, err := a.ensureDaemon(ctx)
	if err != nil {
		return err
	}
	var errs []error
	removed := []api.VMDetail{}
	for _, name := range names {
		var det api.VMDetail
		if err := rpc.Call(ctx, layout.SocketPath, api.MethodVMRemove, api.VMRemoveParams{Name: name, Force: force}, &det); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, det)
		if !a.jsonOut {
			fmt.Fprintf(a.stdout, "removed vm %s\n", det.Name)
		}
	}
	if a.jsonOut {
		if err := a.printJSON(removed); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

func (a *app) vmListCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List VMs",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			layout, _, _, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			var vms []api.VMDetail
			if err := rpc.Call(cmd.Context(), layout.SocketPath, api.MethodVMList, nil, &vms); err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(vms)
			}
			if len(vms) == 0 {
				fmt.Fprintln(a.stdout, "no VMs; create one with 'banger vm create'")
				return nil
			}
			t := newTableNoIndent(a.stdout)
			t.row("NAME", "STATE", "IP", "IMAGE", "VCPUS", "MEMORY", "AGE")
			for _, vm := range vms {
				t.row(vm.Name, string(vm.State), vm.Runtime.GuestIP, orDash(vm.ImageName), fmt.Sprint(vm.Spec.VCPUCount),
					model.FormatSizeBytes(int64(vm.Spec.MemoryMiB)<<20), formatAge(time.Since(vm.CreatedAt)))
			}
			return t.flush()
		},
	}
}

func formatAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func (a *app) vmShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a VM: state, address, disks, VMM, last error",
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			det, err := a.vmDetail(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(det)
			}
			r := det.Runtime
			t := newTableNoIndent(a.stdout)
			t.row("name", det.Name)
			t.row("id", det.ID)
			t.row("state", string(det.State))
			if r.LastError != "" {
				t.row("last error", r.LastError)
			}
			t.row("image", orDash(det.ImageName))
			t.row("address", fmt.Sprintf("%s (%s, mac %s)", r.GuestIP, r.DNSName, r.MAC))
			t.row("vmm", r.VMM+pidSuffix(det.PID))
			if c := det.VMMChoice; c != nil {
				t.row("new vms get", describeVMMChoice(*c))
			}
			t.row("vcpus", fmt.Sprint(det.Spec.VCPUCount))
			t.row("memory", model.FormatSizeBytes(int64(det.Spec.MemoryMiB)<<20))
			t.row("system", fmt.Sprintf("%s (%s, %s)", r.SystemOverlay, model.FormatSizeBytes(det.Spec.SystemOverlaySizeByte), r.OverlayStrategy))
			t.row("work disk", fmt.Sprintf("%s (%s, at /root)", r.WorkDiskPath, model.FormatSizeBytes(det.Spec.WorkDiskSizeBytes)))
			t.row("nat", fmt.Sprint(det.Spec.NATEnabled))
			if r.TapDevice != "" {
				t.row("tap", r.TapDevice)
			}
			t.row("console", r.LogPath)
			t.row("created", det.CreatedAt.Local().Format(time.RFC3339))
			t.row("last used", det.LastTouchedAt.Local().Format(time.RFC3339))
			if det.Workspace != nil {
				workspaceRows(t, *det.Workspace)
			}
			return t.flush()
		},
	}
}

func pidSuffix(pid int) string {
	if pid == 0 {
		return ""
	}
	return fmt.Sprintf(" (pid %d)", pid)
}

func (a *app) vmDetail(ctx context.Context, name string) (api.VMDetail, error) {
	layout, _, _, err := a.ensureDaemon(ctx)
	if err != nil {
		return api.VMDetail{}, err
	}
	var det api.VMDetail
	err = rpc.Call(ctx, layout.SocketPath, api.MethodVMShow, api.VMRef{Name: name}, &det)
	return det, err
}

func (a *app) vmSetCommand() *cobra.Command {
	var vcpus int
	var memory, disk string
	var nat bool
	cmd := &cobra.Command{
		Use:   "set NAME",
		Short: "Change a VM's vCPUs or memory (stopped), grow its work disk (stopped), or switch NAT (live)",
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := api.VMSetParams{Name: args[0]}
			f := cmd.Flags()
			if f.Changed("vcpus") {
				p.VCPUs = &vcpus
			}
			if f.Changed("memory") {
				p.Memory = &memory
			}
			if f.Changed("disk") {
				p.Disk = &disk
			}
			if f.Changed("nat") {
				p.NAT = &nat
			}
			if p.VCPUs == nil && p.Memory == nil && p.Disk == nil && p.NAT == nil {
				return usageError{errors.New("nothing to change: give --vcpus, --memory, --disk or --nat"), cmd.CommandPath()}
			}
			layout, _, _, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			var det api.VMDetail
			if err := rpc.Call(cmd.Context(), layout.SocketPath, api.MethodVMSet, p, &det); err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(det)
			}
			fmt.Fprintf(a.stdout, "%s: %d vCPUs, %s memory, %s work disk, nat %v\n", det.Name, det.Spec.VCPUCount,
				model.FormatSizeBytes(int64(det.Spec.MemoryMiB)<<20), model.FormatSizeBytes(det.Spec.WorkDiskSizeBytes), det.Spec.NATEnabled)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&vcpus, "vcpus", 0, "virtual CPUs (VM stopped)")
	f.StringVar(&memory, "memory", "", "memory, e.g. 4G (VM stopped)")
	f.StringVar(&disk, "disk", "", "grow the work disk to this size (VM stopped; never shrinks)")
	f.BoolVar(&nat, "nat", false, "outbound NAT on or off (--nat=false), live")
	return cmd
}

func (a *app) vmLogsCommand() *cobra.Command {
	var follow bool
	var lines int
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Print a VM's console log; -f follows it",
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if lines < 0 {
				return usageError{fmt.Errorf("--lines must be 0 (all) or more, got %d", lines), cmd.CommandPath()}
			}
			det, err := a.vmDetail(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.printFile(cmd.Context(), det.Runtime.LogPath, lines, follow, "no console output yet for "+det.Name)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new output until interrupted")
	cmd.Flags().IntVarP(&lines, "lines", "n", 0, "print only the last N lines (0: all)")
	return cmd
}

// minArgs is cobra.MinimumNArgs reporting a usage error.
func minArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= n {
			return nil
		}
		return usageError{fmt.Errorf("%q needs %s", cmd.CommandPath(), names), cmd.CommandPath()}
	}
}

// changed is &v when the flag was given, nil when it was left out: what
// the wire's optional fields want.
func changed[T any](cmd *cobra.Command, name string, v T) *T {
	if !cmd.Flags().Changed(name) {
		return nil
	}
	return &v
}
