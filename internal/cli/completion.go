package cli

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"banger/internal/api"
	"banger/internal/model"
	"banger/internal/rpc"
)

// completionTimeout bounds the daemon call a completion makes: a shell
// waiting on <TAB> would rather get nothing than hang.
const completionTimeout = time.Second

// A nameList lists what a command's arguments may name, from the daemon
// at socket: each a cobra completion, "name\tdescription".
type nameList func(ctx context.Context, socket string) ([]cobra.Completion, error)

// argCompletion is how one command's arguments complete.
type argCompletion struct {
	names nameList
	every bool // every argument is a name (vm rm a b c); else only the first
	// dirAfter: the argument after the name is a directory (workspace
	// prepare VM PATH).
	dirAfter bool
}

// argCompletions are the commands, by path below banger, whose
// arguments are VM or image names.
var argCompletions = map[string]argCompletion{
	"vm start":   {vmNames(func(s model.VMState) bool { return s != model.VMStateRunning }), true, false},
	"vm stop":    {vmNames(isRunning), true, false},
	"vm restart": {vmNames(nil), true, false},
	"vm rm":      {vmNames(nil), true, false},
	"vm touch":   {vmNames(nil), true, false},
	"vm show":    {vmNames(nil), false, false},
	"vm set":     {vmNames(nil), false, false},
	"vm logs":    {vmNames(nil), false, false},
	"vm ssh":     {vmNames(isRunning), false, false},
	"vm exec":    {vmNames(isRunning), false, false},
	"image show": {imageNames, false, false},
	"image rm":   {imageNames, false, false},

	"workspace prepare": {vmNames(isRunning), false, true},
	"workspace show":    {vmNames(nil), false, false},
	"workspace harvest": {vmNames(isRunning), false, false},
}

// dirArgs are the commands whose (one) argument is a directory.
var dirArgs = []string{"run"}

// dirFlags are flags, by command path and flag name, whose values are
// directories.
var dirFlags = [][2]string{{"vm create", "workspace"}}

// flagCompletions are flags, by command path and flag name, whose values
// are names.
var flagCompletions = map[[2]string]nameList{
	{"vm create", "image"}: imageNames,
}

func isRunning(s model.VMState) bool { return s == model.VMStateRunning }

// addCompletions makes shell completion offer VM and image names where
// a command takes them, and nothing (rather than the files of the
// working directory) for banger's other arguments.
func (a *app) addCompletions(root *cobra.Command) {
	var walk func(cmd *cobra.Command)
	walk = func(cmd *cobra.Command) {
		path := strings.TrimPrefix(strings.TrimPrefix(cmd.CommandPath(), root.Name()), " ")
		if c, ok := argCompletions[path]; ok {
			cmd.ValidArgsFunction = a.completeArgs(c)
		} else if slices.Contains(dirArgs, path) {
			cmd.ValidArgsFunction = completeDir
		} else if !cmd.HasSubCommands() && cmd.ValidArgsFunction == nil && len(cmd.ValidArgs) == 0 {
			cmd.ValidArgsFunction = cobra.NoFileCompletions
		}
		for key, names := range flagCompletions {
			if key[0] == path {
				_ = cmd.RegisterFlagCompletionFunc(key[1], a.completeFlag(names))
			}
		}
		for _, key := range dirFlags {
			if key[0] == path {
				_ = cmd.RegisterFlagCompletionFunc(key[1], completeDir)
			}
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	for _, sub := range root.Commands() {
		walk(sub)
	}
}

func (a *app) completeArgs(c argCompletion) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) == 1 && c.dirAfter {
			return nil, cobra.ShellCompDirectiveFilterDirs
		}
		if len(args) > 0 && !c.every {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, name := range a.names(cmd.Context(), c.names) {
			n, _, _ := strings.Cut(name, "\t")
			if strings.HasPrefix(n, toComplete) && !slices.Contains(args, n) {
				out = append(out, name)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeDir offers the shell's directories.
func completeDir(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return nil, cobra.ShellCompDirectiveFilterDirs
}

func (a *app) completeFlag(list nameList) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		var out []cobra.Completion
		for _, name := range a.names(cmd.Context(), list) {
			if strings.HasPrefix(name, toComplete) {
				out = append(out, name)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// names asks a daemon that is already running for names. It never
// starts one, waits at most completionTimeout, and on any failure
// offers nothing: a completion has nowhere to say what went wrong.
func (a *app) names(ctx context.Context, list nameList) []cobra.Completion {
	layout, err := a.layout()
	if err != nil {
		return nil
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, completionTimeout)
	defer cancel()
	names, err := list(ctx, layout.SocketPath)
	if err != nil {
		return nil
	}
	return names
}

// vmNames lists the VMs whose state keep accepts (all when nil), each
// described by its state.
func vmNames(keep func(model.VMState) bool) nameList {
	return func(ctx context.Context, socket string) ([]cobra.Completion, error) {
		var vms []api.VMDetail
		if err := rpc.Call(ctx, socket, api.MethodVMList, nil, &vms); err != nil {
			return nil, err
		}
		var out []cobra.Completion
		for _, vm := range vms {
			if keep == nil || keep(vm.State) {
				out = append(out, cobra.CompletionWithDesc(vm.Name, string(vm.State)))
			}
		}
		return out, nil
	}
}

func imageNames(ctx context.Context, socket string) ([]cobra.Completion, error) {
	var imgs []model.Image
	if err := rpc.Call(ctx, socket, api.MethodImageList, nil, &imgs); err != nil {
		return nil, err
	}
	out := make([]cobra.Completion, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, img.Name)
	}
	return out, nil
}
