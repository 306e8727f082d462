package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"banger/internal/api"
	"banger/internal/model"
	"banger/internal/rpc"
)

func (a *app) imageCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Build, register, list, show and remove VM images",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(a.imageBuildCommand(), a.imageRegisterCommand(), a.imageListCommand(), a.imageShowCommand(), a.imageRemoveCommand())
	return cmd
}

// absPaths makes the named path flags absolute: the daemon does not share
// this command's working directory.
func absPaths(paths ...*string) error {
	for _, p := range paths {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	return nil
}

func (a *app) imageBuildCommand() *cobra.Command {
	var p api.ImageBuildParams
	var noWait bool
	var follow string
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Build a bootable Debian image from packages",
		Long: `Build a bootable image from Debian packages with mmdebstrap: a root
filesystem with systemd, openssh-server, iproute2, ca-certificates and git
(plus --packages), the kernel from linux-image-amd64 (or --kernel), banger's
initramfs when the kernel needs modules, and banger's guest program.

Without --name it builds the default image (default_image_name, "default").
Packages are downloaded from --mirror, by default the Debian mirror in this
host's apt sources, and cached, so a second build downloads nothing.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := absPaths(&p.Kernel, &p.Initrd); err != nil {
				return err
			}
			ctx := cmd.Context()
			layout, _, _, err := a.ensureDaemon(ctx)
			if err != nil {
				return err
			}
			if follow != "" {
				return a.finishImageBuild(ctx, layout.SocketPath, model.Operation{ID: follow}, a.stdout)
			}
			var op model.Operation
			if err := rpc.Call(ctx, layout.SocketPath, api.MethodImageBuildBegin, p, &op); err != nil {
				return err
			}
			if noWait {
				if a.jsonOut {
					return a.printJSON(op)
				}
				fmt.Fprintf(a.stdout, "building image %s as %s; follow it with 'banger image build --follow %s'\n", op.Target, op.ID, op.ID)
				return nil
			}
			return a.finishImageBuild(ctx, layout.SocketPath, op, a.stdout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&p.Name, "name", "", "image name (default: default_image_name from the config, \"default\")")
	f.StringVar(&p.Suite, "suite", "", "Debian suite (default bookworm)")
	f.StringSliceVar(&p.Packages, "packages", nil, "more packages to install, comma-separated")
	f.StringVar(&p.Size, "size", "", "root filesystem size, e.g. 4G (default 4G)")
	f.StringVar(&p.Mirror, "mirror", "", "Debian mirror URL (default: this host's, else deb.debian.org)")
	f.StringVar(&p.Kernel, "kernel", "", "use this kernel (ELF vmlinux or bzImage) instead of linux-image-amd64")
	f.StringVar(&p.Initrd, "initrd", "", "initrd for --kernel")
	f.BoolVar(&noWait, "no-wait", false, "start the build and return its operation id")
	f.StringVar(&follow, "follow", "", "follow a build started earlier (with --no-wait), by its operation id")
	return cmd
}

// finishImageBuild follows a build to its end and says on out what it
// built.
func (a *app) finishImageBuild(ctx context.Context, socket string, op model.Operation, out io.Writer) error {
	if !a.jsonOut && op.Target != "" {
		fmt.Fprintf(a.stderr, "building image %s (%s)\n", op.Target, op.ID)
	}
	st, took, err := a.follow(ctx, socket, op.ID, true)
	if err != nil {
		return err
	}
	if err := operationError(st); err != nil {
		return err
	}
	var det api.ImageDetail
	if err := json.Unmarshal(st.Result, &det); err != nil {
		return fmt.Errorf("image build result: %w", err)
	}
	if a.jsonOut {
		return a.printJSON(det)
	}
	// The total the progress showed, by the daemon's clock.
	fmt.Fprintf(out, "built image %s (%s) in %s: kernel %s, root filesystem %s, %s on disk\n",
		det.Name, shortID(det.ID), took.Round(time.Second), orDash(det.KernelVersion), det.BuildSize, model.HumanBytes(det.DiskBytes))
	return nil
}

func (a *app) imageRegisterCommand() *cobra.Command {
	var p api.ImageRegisterParams
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Register a kernel and root filesystem you bring",
		Long: `Register an image from files you provide: a kernel (ELF vmlinux, or a
bzImage from which banger extracts one), an ext4 root filesystem image, and
optionally an initrd or the kernel's modules directory (from which banger
builds its own initramfs). banger never modifies or deletes these files.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if p.Name == "" || p.Kernel == "" || p.Rootfs == "" {
				return usageError{fmt.Errorf("--name, --kernel and --rootfs are required"), cmd.CommandPath()}
			}
			if err := absPaths(&p.Kernel, &p.Rootfs, &p.Initrd, &p.ModulesDir); err != nil {
				return err
			}
			layout, _, _, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			var det api.ImageDetail
			if err := rpc.Call(cmd.Context(), layout.SocketPath, api.MethodImageRegister, p, &det); err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(det)
			}
			fmt.Fprintf(a.stdout, "registered image %s (%s): kernel %s\n", det.Name, shortID(det.ID), orDash(det.KernelVersion))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&p.Name, "name", "", "image name (a DNS label)")
	f.StringVar(&p.Kernel, "kernel", "", "kernel: ELF vmlinux or bzImage")
	f.StringVar(&p.Rootfs, "rootfs", "", "ext4 root filesystem image")
	f.StringVar(&p.Initrd, "initrd", "", "initrd (optional)")
	f.StringVar(&p.ModulesDir, "modules-dir", "", "the kernel's /lib/modules/<release> (optional; banger builds an initramfs from it)")
	return cmd
}

func (a *app) imageListCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List images",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			layout, _, _, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			var imgs []model.Image
			if err := rpc.Call(cmd.Context(), layout.SocketPath, api.MethodImageList, nil, &imgs); err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(imgs)
			}
			if len(imgs) == 0 {
				fmt.Fprintln(a.stdout, "no images; build the default one with 'banger image build'")
				return nil
			}
			t := newTableNoIndent(a.stdout)
			t.row("NAME", "ID", "KIND", "ROOTFS", "CREATED")
			for _, img := range imgs {
				kind := "built"
				if !img.Managed {
					kind = "registered"
				}
				t.row(img.Name, shortID(img.ID), kind, orDash(img.BuildSize), img.CreatedAt.Local().Format("2006-01-02 15:04"))
			}
			return t.flush()
		},
	}
}

func (a *app) imageShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show an image: its files, how it was built, the VMs that use it",
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			layout, _, _, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			var det api.ImageDetail
			if err := rpc.Call(cmd.Context(), layout.SocketPath, api.MethodImageShow, api.ImageRef{Name: args[0]}, &det); err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(det)
			}
			t := newTableNoIndent(a.stdout)
			kind := "built by banger"
			if !det.Managed {
				kind = "registered (banger never deletes its files)"
			}
			t.row("name", det.Name)
			t.row("id", det.ID)
			t.row("kind", kind)
			t.row("kernel", det.KernelPath+" "+parens(det.KernelVersion))
			t.row("initrd", orDash(det.InitrdPath))
			t.row("rootfs", det.RootfsPath+" "+parens(det.BuildSize))
			t.row("work seed", orDash(det.WorkSeedPath))
			if det.ModulesDir != "" {
				t.row("modules", det.ModulesDir)
			}
			t.row("ssh key", orDash(det.SeededSSHPublicKeyFingerprint))
			t.row("disk", model.HumanBytes(det.DiskBytes))
			t.row("used by", orDash(strings.Join(det.UsedBy, ", ")))
			t.row("created", det.CreatedAt.Local().Format(time.RFC3339))
			if b := det.Build; b != nil {
				t.row("suite", b.Suite+" from "+b.Mirror)
				t.row("packages", strings.Join(b.Packages, " "))
				if len(b.Modules) > 0 {
					t.row("initramfs", fmt.Sprintf("%d modules", len(b.Modules)))
				}
				t.row("built in", fmt.Sprintf("%s (%s mode)", b.Duration.Round(time.Second), b.Mode))
				t.row("build log", b.BuildLog)
			}
			return t.flush()
		},
	}
}

func (a *app) imageRemoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME",
		Aliases: []string{"remove"},
		Short:   "Remove an image no VM uses",
		Args:    exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			layout, _, _, err := a.ensureDaemon(cmd.Context())
			if err != nil {
				return err
			}
			var res api.ImageRemoveResult
			if err := rpc.Call(cmd.Context(), layout.SocketPath, api.MethodImageRemove, api.ImageRef{Name: args[0]}, &res); err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(res)
			}
			fmt.Fprintf(a.stdout, "removed image %s (%s)\n", res.Name, shortID(res.ID))
			for _, f := range res.KeptFiles {
				fmt.Fprintf(a.stdout, "  kept your file %s\n", f)
			}
			return nil
		},
	}
}

// exactArgs is cobra.ExactArgs reporting a usage error that names what is
// missing.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		return usageError{fmt.Errorf("%q takes %s, got %d argument(s)", cmd.CommandPath(), names, len(args)), cmd.CommandPath()}
	}
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func parens(s string) string {
	if s == "" {
		return ""
	}
	return "(" + s + ")"
}
