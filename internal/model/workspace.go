package model

import "time"

// Workspace is a VM's workspace as banger keeps it: where it was
// prepared from (the seed's WorkspacePrepareResult) and what its last
// harvest brought back.
type Workspace struct {
	WorkspacePrepareResult
	// HarvestedCommit is the commit the host branch was set to by the
	// last harvest, "" before the first.
	HarvestedCommit string    `json:"harvested_commit,omitempty"`
	HarvestedAt     time.Time `json:"harvested_at,omitzero"`
}

// WorkspaceBranch is the branch a VM's workspace is on, in the guest and,
// once harvested, on the host.
func WorkspaceBranch(vmName string) string { return "banger/" + vmName }
