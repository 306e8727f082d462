package cli

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"banger/internal/api"
	"banger/internal/errdefs"
	"banger/internal/model"
	"banger/internal/operation"
	"banger/internal/rpc"
	"banger/internal/testutil/memops"
)

// TestRunBuildsTheMissingDefaultImageFirst: banger run with no default
// image builds it (following its progress), then asks for the VM with
// the workspace at the path it was given, made absolute.
func TestRunBuildsTheMissingDefaultImageFirst(t *testing.T) {
	reg := operation.NewRegistry(&memops.Store{}, nil)
	var mu sync.Mutex
	var calls []string
	var created api.VMCreateParams
	note := func(m string) { mu.Lock(); calls = append(calls, m); mu.Unlock() }
	serveDaemon(t, map[string]rpc.Handler{
		api.MethodImageShow: rpc.Typed(func(ctx context.Context, p api.ImageRef) (api.ImageDetail, error) {
			note("image.show " + p.Name)
			return api.ImageDetail{}, fmt.Errorf("image %q: %w", "default", errdefs.ErrNotFound)
		}),
		api.MethodImageBuildBegin: rpc.Typed(func(ctx context.Context, p api.ImageBuildParams) (model.Operation, error) {
			note("image.build.begin")
			return reg.Begin(ctx, "image.build", "default", []string{"packages"}, func(ctx context.Context, r *operation.Reporter) (any, error) {
				r.Stage("packages")
				time.Sleep(50 * time.Millisecond)
				return api.ImageDetail{Image: model.Image{Name: "default", ID: "0123456789ab"}}, nil
			})
		}),
		api.MethodVMCreateBegin: rpc.Typed(func(ctx context.Context, p api.VMCreateParams) (model.Operation, error) {
			note("vm.create.begin")
			mu.Lock()
			created = p
			mu.Unlock()
			return model.Operation{}, fmt.Errorf("no room for it: %w", errdefs.ErrUnavailable)
		}),
		api.MethodOperationStatus: rpc.Typed(func(ctx context.Context, p api.OperationStatusParams) (api.OperationStatus, error) {
			return reg.Status(ctx, p.ID, p.AfterSeq, time.Duration(p.WaitMS)*time.Millisecond)
		}),
	})
	dir := t.TempDir()
	t.Chdir(dir)
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), []string{"run", "sub", "--", "make", "test"}, strings.NewReader(""), &stdout, &stderr)
	if code != exitError || !strings.Contains(stderr.String(), "no room for it") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	if got := strings.Join(calls, ", "); got != "image.show , image.build.begin, vm.create.begin" {
		t.Errorf("calls: %s", got)
	}
	if !strings.Contains(stderr.String(), "the default image does not exist yet: building it first") || !strings.Contains(stderr.String(), "built image default") {
		t.Errorf("stderr does not say it builds the image:\n%s", stderr.String())
	}
	if created.Workspace == nil || created.Workspace.Path != dir+"/sub" || created.Name != "" {
		t.Errorf("create asked for %+v (workspace %+v); want the workspace at %s/sub and no name (the daemon names it after the repository)", created, created.Workspace, dir)
	}
}

func TestRunArgs(t *testing.T) {
	serveDaemon(t, map[string]rpc.Handler{})
	for args, want := range map[string]string{
		"run a b":        `takes one PATH, got ["a" "b"]`,
		"run a --":       "nothing after --",
		"run a b -- c":   `takes one PATH, got ["a" "b"]`,
		"run --nope":     "unknown flag: --nope",
		"run --wip=nope": "invalid argument",
	} {
		var stdout, stderr bytes.Buffer
		code := Run(context.Background(), strings.Fields(args), strings.NewReader(""), &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), want) {
			t.Errorf("banger %s: exit %d, %q; want a usage error with %q", args, code, stderr.String(), want)
		}
	}
}
