package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"banger/internal/api"
	"banger/internal/rpc"
)

// doctorTimeout bounds daemon.doctor: the daemon bounds each of its
// slow steps (the helper call, each `--version`) well inside it.
const doctorTimeout = 30 * time.Second

func (a *app) doctorCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check whether this host can run banger, and show what it would choose",
		Long: `doctor asks bangerd (starting it if needed) to check this host, one line
per check: KVM, QEMU, Firecracker, banger-helper and its bridge, the tap
pool, the ways of making system overlays, the tools image builds and VM
creates run, banger's SSH key, the default image and free space. Then it
shows what a VM created now would get: its VMM driver, QEMU's accelerator
and the system overlay strategy.

A check is ok, warn (banger works, but slower or with less) or fail
(banger cannot run VMs until it is fixed). The exit status is 1 when any
check failed.`,
		Args: noArgs,
		RunE: a.runDoctor,
	}
}

func (a *app) runDoctor(cmd *cobra.Command, _ []string) error {
	ctx := cmd.Context()
	layout, ping, _, err := a.ensureDaemon(ctx)
	if err != nil {
		return err
	}
	callCtx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	var res api.DoctorResult
	err = rpc.Call(callCtx, layout.SocketPath, api.MethodDaemonDoctor, nil, &res)
	var remote *rpc.ErrorResponse
	switch {
	case errors.As(err, &remote) && remote.Code == rpc.CodeUnknownMethod:
		return fmt.Errorf("bangerd (pid %d, version %s) is older than banger and cannot run doctor; stop it with 'banger daemon stop' and run the command again",
			ping.PID, ping.Version)
	case err != nil:
		return err
	}
	if a.jsonOut {
		if err := a.printJSON(res); err != nil {
			return err
		}
	} else if err := a.printDoctor(res); err != nil {
		return err
	}
	if failed := res.Failed(); len(failed) > 0 {
		names := make([]string, len(failed))
		for i, c := range failed {
			names[i] = c.Name
		}
		return fmt.Errorf("%s failed: %s", plural(uint64(len(failed)), "check", "checks"), strings.Join(names, ", "))
	}
	return nil
}

// printDoctor writes the checks as a table, then the choices, then a
// verdict when nothing failed (a failure is reported as the error).
func (a *app) printDoctor(res api.DoctorResult) error {
	t := newTableNoIndent(a.stdout)
	t.row("CHECK", "STATUS", "DETAIL")
	for _, c := range res.Checks {
		t.row(c.Name, c.Status, c.Detail)
	}
	if err := t.flush(); err != nil {
		return err
	}
	ch := res.Choices
	fmt.Fprintln(a.stdout, "\na VM created now gets")
	t = newTable(a.stdout)
	driver := orDash(ch.Driver)
	if ch.VMM != "" && ch.VMM != ch.Driver {
		driver += fmt.Sprintf(" (vmm = %s)", ch.VMM)
	}
	t.row("driver", driver)
	if ch.Driver == "qemu" {
		t.row("accel", describeAccel(ch))
	}
	t.row("overlay", orDash(ch.OverlayStrategy))
	if err := t.flush(); err != nil {
		return err
	}
	if len(res.Failed()) == 0 {
		verdict := "\nbanger can run VMs on this host"
		if n := len(res.Warnings()); n > 0 {
			verdict += fmt.Sprintf(" (%s: see above)", plural(uint64(n), "warning", "warnings"))
		}
		fmt.Fprintln(a.stdout, verdict)
	}
	return nil
}

// describeAccel is the accelerator line of doctor's choices: the head of
// the decision's reason ("KVM", "TCG (emulation)"), whose rest the kvm
// check has already shown, or the error that left QEMU with none.
func describeAccel(ch api.DoctorChoices) string {
	if ch.Accel == "" {
		return "none: " + ch.AccelReason
	}
	head, rest, ok := strings.Cut(ch.AccelReason, ": ")
	switch {
	case !ok:
		return ch.Accel
	case rest == "configured":
		return head + " (configured)"
	}
	return head
}
