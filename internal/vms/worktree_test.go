package vms

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"banger/internal/model"
)

// TestCreateWithWorkTree: the work tree is built once the VM has its
// row, in the VM's directory, reported as its own stage, and moved onto
// the work disk.
func TestCreateWithWorkTree(t *testing.T) {
	e := newEnv(t)
	var built string
	req := e.req("ws")
	req.WorkTree = &WorkTree{GuestPath: "/root/proj", Build: func(ctx context.Context, vm model.VMRecord, dir string, rep Progress) (int64, error) {
		if _, err := e.store.GetVM(ctx, vm.ID); err != nil || vm.Name != "ws" {
			t.Errorf("Build ran before the VM had its row: %v (name %q)", err, vm.Name)
		}
		if filepath.Dir(dir) != vm.Runtime.VMDir {
			t.Errorf("Build's dir %s is not in the VM's directory %s", dir, vm.Runtime.VMDir)
		}
		rep.Detail("copied 1 file", -1)
		built = dir
		if err := os.MkdirAll(filepath.Join(dir, ".git"), 0o755); err != nil {
			return 0, err
		}
		return 5, os.WriteFile(filepath.Join(dir, "README"), []byte("hello"), 0o644)
	}}
	plan, err := e.s.planCreate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if st := plan.stages(); slices.Index(st, stageWorkspace) != slices.Index(st, stageWorkDisk)-1 || slices.Contains(createStages, stageWorkspace) {
		t.Errorf("stages %v: want %q just before %q, and only in this create's", st, stageWorkspace, stageWorkDisk)
	}
	if _, _, err := e.create(req); err != nil {
		t.Fatal(err)
	}
	if built == "" {
		t.Fatal("Build was not called")
	}
	if _, err := os.Lstat(built); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the tree's directory %s is still there (it should be on the work disk): %v", built, err)
	}
}

// TestCreateWorkTreeFailureRemovesEverything: a Build that fails fails
// the create, which leaves no VM and no directory.
func TestCreateWorkTreeFailureRemovesEverything(t *testing.T) {
	e := newEnv(t)
	req := e.req("ws")
	req.WorkTree = &WorkTree{GuestPath: "/root/proj", Build: func(ctx context.Context, vm model.VMRecord, dir string, rep Progress) (int64, error) {
		os.MkdirAll(filepath.Join(dir, "half"), 0o755)
		return 0, errors.New("repository vanished")
	}}
	_, _, err := e.create(req)
	if err == nil || !strings.Contains(err.Error(), "workspace: repository vanished") {
		t.Fatalf("create: %v, want the workspace's error", err)
	}
	if vms, _ := e.store.ListVMs(context.Background()); len(vms) != 0 {
		t.Errorf("%d VMs left after a failed workspace", len(vms))
	}
	if left, _ := os.ReadDir(e.s.layout.VMsDir); len(left) != 0 {
		t.Errorf("left in the VMs directory: %v", left)
	}
	if e.drv.live() != 0 {
		t.Errorf("%d VMMs run", e.drv.live())
	}
}
