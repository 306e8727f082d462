package workspace

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"banger/internal/api"
	"banger/internal/gitrepo"
	"banger/internal/model"
	"banger/internal/oplog"
)

// Progress is what a prepare reports its details through: an
// operation's reporter.
type Progress interface {
	Detail(msg string, frac float64)
}

// Plan is a workspace to be made on a new VM's work disk, checked
// before anything is made.
type Plan struct {
	GuestPath string
	s         *Service
	src       source
}

// PlanCreate checks the workspace a create asks for: its mode, then its
// repository.
func (s *Service) PlanCreate(ctx context.Context, spec api.WorkspaceSpec) (*Plan, error) {
	mode, err := model.ParseWorkspacePrepareMode(spec.Mode)
	if err != nil {
		return nil, err
	}
	src, err := s.inspect(ctx, mode, spec.Path)
	if err != nil {
		return nil, err
	}
	return &Plan{GuestPath: s.guestPath(src.repo.Name), s: s, src: src}, nil
}

// DefaultVMName is the name a VM made for this workspace gets when the
// user gives none: the repository's name as a DNS label, and four hex
// digits, picked so that the repository has no branch banger/<name>
// already (an earlier run's, which a harvest would refuse to move).
func (p *Plan) DefaultVMName(ctx context.Context) string {
	name := DefaultVMName(p.src.repo.Name)
	for i := 0; i < 16 && branchTip(ctx, p.src.repo, model.WorkspaceBranch(name)) != ""; i++ {
		name = DefaultVMName(p.src.repo.Name)
	}
	return name
}

// DefaultVMName is "<repo>-<4 hex>", the repository's name lowered and
// cut to what a VM name allows.
func DefaultVMName(repo string) string {
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(repo) {
		switch {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
			b.WriteRune(c)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	label := strings.Trim(b.String(), "-")
	if len(label) > 58 {
		label = strings.TrimRight(label[:58], "-")
	}
	if label == "" {
		label = "ws"
	}
	var suffix [2]byte
	rand.Read(suffix[:])
	return label + "-" + hex.EncodeToString(suffix[:])
}

// Build makes the workspace's repository in dir for vm, as the VM's
// create calls it, records it with the VM, and says how many bytes it
// takes on a disk at most (its content and a block per file).
func (p *Plan) Build(ctx context.Context, vm model.VMRecord, dir string, rep Progress) (int64, error) {
	s := p.s
	op := oplog.Begin(ctx, s.logger, "workspace.build", append(oplog.VMAttrs(vm), "repo", p.src.repo.Root, "mode", string(p.src.mode))...)
	b, err := s.build(ctx, vm, p.src, dir, rep)
	if err != nil {
		return 0, op.Fail(err)
	}
	if err := s.store.SaveWorkspace(ctx, b.res, b.tree); err != nil {
		return 0, op.Fail(err)
	}
	op.Done("files", b.out.Files, "bytes", b.out.Bytes)
	return b.out.Bytes + int64(b.out.Files)*blockSize, nil
}

// blockSize is what a file takes on an ext4 disk at least.
const blockSize = 4096

// built is a workspace made in a directory, not placed yet: its record,
// what gitrepo.Build made, and the tree the guest is given.
type built struct {
	res  model.WorkspacePrepareResult
	out  gitrepo.BuildResult
	tree string
}

// build makes src's repository for vm in dir and marks what the guest
// is given, saying how it goes through rep.
func (s *Service) build(ctx context.Context, vm model.VMRecord, src source, dir string, rep Progress) (built, error) {
	b := built{res: s.result(vm, src)}
	var err error
	b.out, err = gitrepo.Build(ctx, src.repo, gitrepo.BuildOptions{
		Mode: src.mode, Branch: b.res.BranchName, Dest: dir, Progress: reportBuild(rep),
	})
	if err != nil {
		return b, err
	}
	for _, w := range b.out.Warnings {
		rep.Detail("warning: "+w, -1)
	}
	rep.Detail(fmt.Sprintf("%s at %s: %s, %s", b.res.Mode, b.res.GuestPath, plural(b.out.Files, "file"), model.HumanBytes(b.out.Bytes)), -1)
	b.tree, err = gitrepo.MarkPrepared(ctx, dir)
	return b, err
}

// reportBuild turns a build's progress into operation details.
func reportBuild(rep Progress) func(gitrepo.Progress) {
	last, files := "", 0
	return func(p gitrepo.Progress) {
		switch {
		case p.Step == "done":
			// The caller says what was made.
		case p.Files > files:
			rep.Detail(fmt.Sprintf("%s: %s, %s", p.Step, plural(p.Files, "file"), model.HumanBytes(p.Bytes)), -1)
		case p.Step != last:
			rep.Detail(p.Step, -1)
		}
		last, files = p.Step, p.Files
	}
}

// plural is "1 file", "2 files".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
