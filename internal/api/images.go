package api

import (
	"time"

	"banger/internal/model"
)

// Image methods.
const (
	MethodImageBuildBegin  = "image.build.begin"
	MethodImageBuildStatus = "image.build.status" // operation.status for builds
	MethodImageRegister    = "image.register"
	MethodImageList        = "image.list"
	MethodImageShow        = "image.show"
	MethodImageRemove      = "image.remove"
)

// ImageBuildParams asks for an image built from Debian packages. Paths
// are absolute (the CLI resolves them against its working directory).
type ImageBuildParams struct {
	Name     string   `json:"name,omitempty"` // default: default_image_name
	Suite    string   `json:"suite,omitempty"`
	Packages []string `json:"packages,omitempty"`
	Size     string   `json:"size,omitempty"`
	Mirror   string   `json:"mirror,omitempty"`
	Kernel   string   `json:"kernel,omitempty"`
	Initrd   string   `json:"initrd,omitempty"`
}

// ImageRegisterParams registers an image a user brings. Paths are
// absolute; banger never deletes these files.
type ImageRegisterParams struct {
	Name       string `json:"name"`
	Kernel     string `json:"kernel"`
	Rootfs     string `json:"rootfs"`
	Initrd     string `json:"initrd,omitempty"`
	ModulesDir string `json:"modules_dir,omitempty"`
}

// ImageRef names an image: its name, its id, or a unique id prefix.
type ImageRef struct {
	Name string `json:"name"`
}

// ImageBuildInfo is how a managed image was built.
type ImageBuildInfo struct {
	Suite         string        `json:"suite"`
	Packages      []string      `json:"packages"`
	Mirror        string        `json:"mirror"`
	Mode          string        `json:"mode"`
	KernelVersion string        `json:"kernel_version,omitempty"`
	Modules       []string      `json:"modules,omitempty"`
	BuildLog      string        `json:"build_log"`
	Duration      time.Duration `json:"duration_ns"`
	CachedDebs    int           `json:"cached_debs"`
}

// ImageDetail is an image as `image show` and `image.build` report it.
type ImageDetail struct {
	model.Image
	KernelVersion string          `json:"kernel_version,omitempty"`
	DiskBytes     int64           `json:"disk_bytes"` // space its files take
	UsedBy        []string        `json:"used_by"`    // VM names
	Build         *ImageBuildInfo `json:"build,omitempty"`
}

// ImageRemoveResult says what image.remove deleted.
type ImageRemoveResult struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	DeletedFiles []string `json:"deleted_files"`
	KeptFiles    []string `json:"kept_files,omitempty"` // a registered image's own files
}
