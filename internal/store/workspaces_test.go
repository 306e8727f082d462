package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"banger/internal/errdefs"
	"banger/internal/model"
)

func TestWorkspaceLifecycle(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	img := mustCreateImage(t, s, "base")
	vm := newTestVM(t, img.ID, "dev", "172.16.0.2")
	if err := s.CreateVM(ctx, vm); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetWorkspace(ctx, vm.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("before any: %v, want ErrNotFound", err)
	}
	ws := model.WorkspacePrepareResult{
		VMID: vm.ID, SourcePath: "/src/p/sub", RepoRoot: "/src/p", RepoName: "p", GuestPath: "/root/p",
		Mode: model.WorkspacePrepareModeShallowOverlay, HeadCommit: "abc", CurrentBranch: "main",
		BranchName: "banger/dev", BaseCommit: "abc", PreparedAt: time.Date(2026, 12, 7, 1, 2, 3, 0, time.UTC),
	}
	if err := s.SaveWorkspace(ctx, ws, "tree1"); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetWorkspace(ctx, vm.ID)
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, got, model.Workspace{WorkspacePrepareResult: ws, PreparedTree: "tree1"})

	at := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	if err := s.RecordHarvest(ctx, vm.ID, "def", at); err != nil {
		t.Fatal(err)
	}
	all, err := s.ListWorkspaces(ctx)
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, all[vm.ID], model.Workspace{WorkspacePrepareResult: ws, HarvestedCommit: "def", HarvestedAt: at, PreparedTree: "tree1"})

	// A VM has one workspace.
	if err := s.SaveWorkspace(ctx, ws, "tree2"); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("a second workspace: %v, want ErrConflict", err)
	}

	if err := s.DeleteVM(ctx, vm.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetWorkspace(ctx, vm.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("after the VM was deleted: %v, want ErrNotFound (the row goes with the VM)", err)
	}
}

func TestWorkspaceErrors(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	if err := s.SaveWorkspace(ctx, model.WorkspacePrepareResult{}, ""); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("no vm id: %v", err)
	}
	if err := s.SaveWorkspace(ctx, model.WorkspacePrepareResult{VMID: "nope"}, ""); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("unknown vm: %v, want ErrNotFound", err)
	}
	if err := s.RecordHarvest(ctx, "nope", "x", time.Now()); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("harvest of a VM without a workspace: %v, want ErrNotFound", err)
	}
}
