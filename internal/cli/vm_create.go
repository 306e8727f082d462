package cli

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"banger/internal/api"
	"banger/internal/model"
	"banger/internal/rpc"
)

// createFlags are the flags a create takes, shared by vm create and run.
type createFlags struct {
	p                     api.VMCreateParams
	nat                   bool
	vcpus                 int
	memory, disk, overlay string
	workspace, wsMode     string
	nameDoc               string
}

func (c *createFlags) register(f *pflag.FlagSet) {
	f.StringVar(&c.p.Name, "name", "", c.nameDoc)
	f.StringVar(&c.p.Image, "image", "", "image to boot (default: default_image_name)")
	f.IntVar(&c.vcpus, "vcpus", 0, "virtual CPUs, 1-32 (default 2)")
	f.StringVar(&c.memory, "memory", "", "memory, e.g. 2G or 512M (default 2G)")
	f.StringVar(&c.disk, "disk", "", "work disk size, mounted at /root (default 8G)")
	f.StringVar(&c.overlay, "overlay-size", "", "system overlay size (default 8G)")
	f.BoolVar(&c.nat, "nat", false, "give the VM outbound network access through NAT")
	f.StringVar(&c.p.VMM, "vmm", "", "VMM driver: auto, qemu or firecracker (default: vmm in the config)")
	f.StringVar(&c.wsMode, "workspace-mode", "", "how the repository goes in: shallow_overlay (default), full_copy or metadata_only")
}

// params are the create's parameters: a flag given is sent as given, so
// the daemon checks it; only a flag left out means "the default".
func (c *createFlags) params(cmd *cobra.Command) (api.VMCreateParams, error) {
	p := c.p
	p.NAT = changed(cmd, "nat", c.nat)
	p.VCPUs = changed(cmd, "vcpus", c.vcpus)
	p.Memory, p.Disk, p.OverlaySize = changed(cmd, "memory", c.memory), changed(cmd, "disk", c.disk), changed(cmd, "overlay-size", c.overlay)
	if c.workspace != "" {
		abs, err := filepath.Abs(c.workspace)
		if err != nil {
			return p, fmt.Errorf("--workspace %s: %w", c.workspace, err)
		}
		p.Workspace = &api.WorkspaceSpec{Path: abs, Mode: c.wsMode}
	} else if cmd.Flags().Changed("workspace-mode") {
		return p, usageError{fmt.Errorf("--workspace-mode needs --workspace PATH"), cmd.CommandPath()}
	}
	return p, nil
}

func (a *app) vmCreateCommand() *cobra.Command {
	c := &createFlags{nameDoc: "VM name, a DNS label (default: generated; <repo>-<4 hex> with --workspace)"}
	var noWait bool
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a VM and boot it (progress as it goes)",
		Long: `Create a VM from an image (default: the default image) and boot it:
allocate its address, copy the image's root file system as its system
overlay, build its work disk (mounted at /root), take a tap, boot the VMM and
wait until its SSH server answers. With --no-start it stops after the disks.

With --workspace PATH the git repository PATH is in goes onto the work disk at
/root/<repo>, on a new branch banger/<vm> (see 'banger workspace').

Sizes take K, M or G (a bare number is MiB); unset values come from
[vm_defaults] in the config, then banger's defaults (2 vCPUs, 2G memory, 8G
work disk, 8G overlay).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := c.params(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			layout, _, _, err := a.ensureDaemon(ctx)
			if err != nil {
				return err
			}
			if noWait {
				var op model.Operation
				if err := rpc.Call(ctx, layout.SocketPath, api.MethodVMCreateBegin, p, &op); err != nil {
					return err
				}
				if a.jsonOut {
					return a.printJSON(op)
				}
				fmt.Fprintf(a.stdout, "creating vm %s as %s\n", op.Target, op.ID)
				return nil
			}
			det, err := a.createVM(ctx, layout.SocketPath, p)
			if err != nil {
				return err
			}
			if p.Workspace != nil {
				// The create's result is the VM's; show adds its workspace.
				if det, err = a.vmDetail(ctx, det.Name); err != nil {
					return err
				}
			}
			if a.jsonOut {
				return a.printJSON(det)
			}
			a.printCreated(det)
			return nil
		},
	}
	f := cmd.Flags()
	c.register(f)
	f.StringVar(&c.workspace, "workspace", "", "put the git repository this directory is in on the work disk (see 'banger workspace')")
	f.BoolVar(&c.p.NoStart, "no-start", false, "create the disks but do not boot")
	f.BoolVar(&noWait, "no-wait", false, "start the create and return its operation id")
	return cmd
}

// createVM begins a create and follows it, with its progress, to the
// VM it made.
func (a *app) createVM(ctx context.Context, socket string, p api.VMCreateParams) (api.VMDetail, error) {
	var det api.VMDetail
	err := a.operate(ctx, socket, api.MethodVMCreateBegin, p, "creating vm %s", &det)
	return det, err
}

func (a *app) printCreated(det api.VMDetail) {
	if ws := det.Workspace; ws != nil {
		fmt.Fprintf(a.stdout, "workspace %s is at %s on branch %s (%s); bring its commits back with 'banger workspace harvest %s'\n",
			ws.RepoRoot, ws.GuestPath, ws.BranchName, ws.Mode, det.Name)
	}
	if det.State == model.VMStateRunning {
		fmt.Fprintf(a.stdout, "vm %s is running at %s; log in with 'banger vm ssh %s'\n", det.Name, det.Runtime.GuestIP, det.Name)
	} else {
		fmt.Fprintf(a.stdout, "vm %s is created (not started); start it with 'banger vm start %s'\n", det.Name, det.Name)
	}
}
