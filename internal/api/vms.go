package api

import (
	"time"

	"banger/internal/model"
)

// BootLimit bounds how long the daemon waits for a booting guest to
// answer SSH. Under software emulation a Debian guest takes 10–20 s; a
// loaded host can double that. Clients size their calls by it.
const BootLimit = 3 * time.Minute

// KillLimit bounds how long a stop waits for a killed VMM to be gone,
// after the graceful power-off's timeout.
const KillLimit = 30 * time.Second

// VM methods.
const (
	MethodVMCreateBegin  = "vm.create.begin"
	MethodVMCreateStatus = "vm.create.status" // operation.status for creates
	MethodVMStart        = "vm.start"
	MethodVMStartBegin   = "vm.start.begin" // vm.start as an operation, followed with operation.status
	MethodVMStop         = "vm.stop"
	MethodVMRestart      = "vm.restart"
	MethodVMRemove       = "vm.remove"
	MethodVMList         = "vm.list"
	MethodVMShow         = "vm.show"
	MethodVMSet          = "vm.set"
	MethodVMTouch        = "vm.touch"
	MethodVMSSHInfo      = "vm.ssh_info"
)

// VMCreateParams asks for a VM. Sizes are written as users write them
// ("8G", "512M", a bare number of MiB). A field left out (nil) takes
// [vm_defaults] and then banger's defaults; a field given is checked as
// given, so an explicit 0 vCPUs or "" memory is an error, never "the
// default".
type VMCreateParams struct {
	Name        string  `json:"name,omitempty"`  // default: generated
	Image       string  `json:"image,omitempty"` // default: default_image_name
	VCPUs       *int    `json:"vcpus,omitempty"`
	Memory      *string `json:"memory,omitempty"`
	Disk        *string `json:"disk,omitempty"`         // work disk
	OverlaySize *string `json:"overlay_size,omitempty"` // system overlay
	NAT         *bool   `json:"nat,omitempty"`
	NoStart     bool    `json:"no_start,omitempty"`
	VMM         string  `json:"vmm,omitempty"` // "", "auto", "qemu", "firecracker"
	// Workspace, when set, puts a git repository on the VM's work disk
	// as it is made; a VM created without a name is then named after it.
	Workspace *WorkspaceSpec `json:"workspace,omitempty"`
}

// VMRef names a VM: its name, id, or a unique id prefix.
type VMRef struct {
	Name string `json:"name"`
}

// VMStopParams stops a VM: gracefully, killed after TimeoutSeconds
// (default 30), or at once with Force.
type VMStopParams struct {
	Name           string `json:"name"`
	TimeoutSeconds int    `json:"timeout_seconds,omitempty"`
	Force          bool   `json:"force,omitempty"`
}

// VMRemoveParams removes a VM; a running one only with Force.
type VMRemoveParams struct {
	Name  string `json:"name"`
	Force bool   `json:"force,omitempty"`
}

// VMSetParams changes a VM. CPUs and memory need it stopped; the work
// disk only grows, and also needs it stopped; NAT changes live.
type VMSetParams struct {
	Name   string  `json:"name"`
	VCPUs  *int    `json:"vcpus,omitempty"`
	Memory *string `json:"memory,omitempty"`
	Disk   *string `json:"disk,omitempty"`
	NAT    *bool   `json:"nat,omitempty"`
}

// VMDetail is a VM as show, list and create report it.
type VMDetail struct {
	model.VMRecord
	ImageName string `json:"image_name"`
	PID       int    `json:"pid,omitempty"` // the VMM's, while running
	// VMMChoice is what a VM created now would get (vm show only): a VM
	// keeps the driver it was created with.
	VMMChoice *VMMChoice `json:"vmm_choice,omitempty"`
	// Workspace is the VM's workspace, when it has one.
	Workspace *model.Workspace `json:"workspace,omitempty"`
}

// VMSSHInfo is how to reach a VM's SSH server: what `vm ssh` and `vm
// exec` hand to ssh. The host key is pinned in KnownHostsFile under
// HostKeyAlias, so the connection is verified.
type VMSSHInfo struct {
	Host           string `json:"host"`
	Port           int    `json:"port"`
	User           string `json:"user"`
	IdentityFile   string `json:"identity_file"`
	KnownHostsFile string `json:"known_hosts_file"`
	HostKeyAlias   string `json:"host_key_alias"`
}
