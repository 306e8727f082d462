package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"banger/internal/api"
	"banger/internal/model"
	"banger/internal/rpc"
)

func (a *app) vmStartCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "start NAME...",
		Short: "Start stopped VMs and wait until they answer SSH (progress as it goes)",
		Args:  minArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.startVMs(cmd.Context(), args)
		},
	}
}

// startVMs starts each named VM in turn as an operation in the daemon,
// showing its stages as vm create does (with --json only the VMs, as
// for the other verbs). A VM that cannot start is reported, and the
// others are still started.
func (a *app) startVMs(ctx context.Context, names []string) error {
	layout, _, _, err := a.ensureDaemon(ctx)
	if err != nil {
		return err
	}
	return a.forEachVM(ctx, names, func(name string) (api.VMDetail, error) {
		return a.startVM(ctx, layout.SocketPath, name)
	})
}

func (a *app) startVM(ctx context.Context, socket, name string) (api.VMDetail, error) {
	var op model.Operation
	if err := rpc.Call(ctx, socket, api.MethodVMStartBegin, api.VMRef{Name: name}, &op); err != nil {
		return api.VMDetail{}, err
	}
	if !a.jsonOut {
		fmt.Fprintf(a.stderr, "starting vm %s (%s)\n", op.Target, op.ID)
	}
	st, _, err := a.follow(ctx, socket, op.ID, false)
	if err != nil {
		return api.VMDetail{}, err
	}
	if err := operationError(st); err != nil {
		return api.VMDetail{}, err
	}
	var det api.VMDetail
	if err := json.Unmarshal(st.Result, &det); err != nil {
		return api.VMDetail{}, fmt.Errorf("vm start result: %w", err)
	}
	return det, nil
}
