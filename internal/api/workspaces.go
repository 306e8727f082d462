package api

import (
	"time"

	"banger/internal/model"
)

// Workspace methods.
const (
	// MethodWorkspacePrepareBegin prepares a workspace in a running VM,
	// as an operation followed with operation.status.
	MethodWorkspacePrepareBegin = "workspace.prepare.begin"
	MethodWorkspaceShow         = "workspace.show"
	MethodWorkspaceHarvest      = "workspace.harvest"
)

// HarvestLimit bounds a harvest: the guest's bundle of what it made and
// the host's fetch of it.
const HarvestLimit = 10 * time.Minute

// WorkspaceSpec is the repository a workspace is made from: any
// directory inside a git work tree, as an absolute path (the CLI
// resolves what the user typed against its own working directory), and
// the seed's mode ("" for shallow_overlay).
type WorkspaceSpec struct {
	Path string `json:"path"`
	Mode string `json:"mode,omitempty"`
}

// WorkspacePrepareParams prepares a workspace in the running VM Name.
type WorkspacePrepareParams struct {
	Name string `json:"name"`
	WorkspaceSpec
}

// WorkspaceHarvestParams brings the commits of VM Name's workspace
// branch back to the host.
type WorkspaceHarvestParams struct {
	Name string `json:"name"`
	// Force replaces a host branch that is not an ancestor of the
	// guest's.
	Force bool `json:"force,omitempty"`
	// WIP commits the guest's uncommitted work first, as one commit.
	WIP bool `json:"wip,omitempty"`
}

// Commit is one commit a harvest brought, as `git log --oneline` shows
// it.
type Commit struct {
	Hash    string `json:"hash"`
	Subject string `json:"subject"`
}

// HarvestResult is what a harvest did.
type HarvestResult struct {
	VM       string `json:"vm"`
	RepoRoot string `json:"repo_root"`
	Branch   string `json:"branch"`
	Base     string `json:"base_commit"`
	// Old and New are the host branch's commit before and after; Old is
	// "" when the branch did not exist.
	Old  string `json:"old,omitempty"`
	New  string `json:"new,omitempty"`
	NoOp bool   `json:"no_op,omitempty"`
	// Commits are Base..New, newest first; Truncated says when there were
	// more than listed.
	Commits   []Commit `json:"commits"`
	Truncated bool     `json:"truncated,omitempty"`
	// Uncommitted is how many paths the guest's `git status` listed after
	// the harvest (work left behind); WIPCommitted says a --wip commit
	// brought them.
	Uncommitted  int  `json:"uncommitted"`
	WIPCommitted bool `json:"wip_committed,omitempty"`
	// Unsaved is how many of those paths the guest changed since the
	// workspace was prepared — work that exists nowhere else; the rest
	// is the host's own uncommitted work, brought in. Removing the VM
	// loses the unsaved paths, so banger run keeps a VM that has any.
	Unsaved int `json:"unsaved"`
	// Stray is how many commits the guest made that a harvest does not
	// bring: on other branches, a detached HEAD, the stash. GuestHead is
	// the ref the guest's HEAD is on ("detached" when none). A count the
	// guest could not give is -1: taken as "some".
	Stray     int    `json:"stray"`
	GuestHead string `json:"guest_head"`
}

// WorkspacePrepareDetail is what a prepare reports when it is done.
type WorkspacePrepareDetail struct {
	model.WorkspacePrepareResult
	Files       int      `json:"files"`
	Bytes       int64    `json:"bytes"`
	LFSPointers int      `json:"lfs_pointers,omitempty"`
	Submodules  int      `json:"submodules,omitempty"`
	Warnings    []string `json:"warnings,omitempty"`
}
