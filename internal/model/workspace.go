package model

import (
	"fmt"
	"time"

	"banger/internal/errdefs"
)

// Workspace is a VM's workspace as banger keeps it: where it was
// prepared from (the seed's WorkspacePrepareResult) and what its last
// harvest brought back.
type Workspace struct {
	WorkspacePrepareResult
	// HarvestedCommit is the commit the host branch was set to by the
	// last harvest, "" before the first.
	HarvestedCommit string    `json:"harvested_commit,omitempty"`
	HarvestedAt     time.Time `json:"harvested_at,omitzero"`
	// PreparedTree is the tree of the work tree the guest was given
	// (staged, unstaged and untracked work included), which tells a
	// harvest the work done in the guest from the work brought in.
	PreparedTree string `json:"prepared_tree,omitempty"`
}

// WorkspaceBranch is the branch a VM's workspace is on, in the guest and,
// once harvested, on the host.
func WorkspaceBranch(vmName string) string { return "banger/" + vmName }

// WorkspacePrepareModes are the modes a workspace can be prepared in,
// the default first.
var WorkspacePrepareModes = []WorkspacePrepareMode{
	WorkspacePrepareModeShallowOverlay, WorkspacePrepareModeFullCopy, WorkspacePrepareModeMetadataOnly,
}

// ParseWorkspacePrepareMode reads a mode as users write it; "" is the
// default, shallow_overlay.
func ParseWorkspacePrepareMode(s string) (WorkspacePrepareMode, error) {
	if s == "" {
		return WorkspacePrepareModeShallowOverlay, nil
	}
	for _, m := range WorkspacePrepareModes {
		if string(m) == s {
			return m, nil
		}
	}
	return "", errdefs.Mark(errdefs.ErrInvalidArgument, fmt.Errorf(
		"workspace mode %q is not one of shallow_overlay (the default: HEAD's commit and your uncommitted work), full_copy (all history) or metadata_only (the git directory alone)", s))
}
