// Package imagebuild makes banger images from Debian packages: a root
// filesystem bootstrapped with mmdebstrap (root mode when the daemon is
// root, unshare mode otherwise), the kernel it installed turned into an
// uncompressed ELF vmlinux, banger's own initramfs when the kernel needs
// modules to reach its disks, the guest program and its boot unit, and an
// ext4 image made with mkfs.ext4 -d — never a loop mount. Downloaded
// packages are kept in a cache, so a second build downloads nothing.
package imagebuild

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"banger/internal/errdefs"
	"banger/internal/model"
)

// Defaults for a build.
const (
	DefaultSuite  = "bookworm"
	DefaultSize   = "4G"
	KernelPackage = "linux-image-amd64"
	// FallbackMirror is used when the host has no Debian mirror in its
	// apt sources.
	FallbackMirror = "http://deb.debian.org/debian"
)

// BasePackages are always installed: what a banger guest needs to boot
// under systemd, take its address, and serve SSH. dbus is there for
// systemd-logind, which bookworm only runs when dbus exists and which is
// what powers the guest off when the VMM presses its ACPI power button
// (a graceful stop).
var BasePackages = []string{"systemd", "systemd-sysv", "dbus", "openssh-server", "iproute2", "ca-certificates", "git"}

// Recipe is what to build. Zero fields take the defaults above.
type Recipe struct {
	Name       string   `json:"name"`
	Suite      string   `json:"suite"`
	Packages   []string `json:"packages,omitempty"` // in addition to BasePackages
	Size       string   `json:"size"`
	Mirror     string   `json:"mirror"`
	KernelPath string   `json:"kernel_path,omitempty"` // instead of the kernel package
	InitrdPath string   `json:"initrd_path,omitempty"` // only with KernelPath
}

var (
	suiteRE   = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
	packageRE = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]{1,99}$`)
)

// Normalize applies defaults and validates; errors name the flag that is
// wrong and are ErrInvalidArgument.
func (r Recipe) Normalize() (Recipe, int64, error) {
	bad := func(format string, args ...any) (Recipe, int64, error) {
		return Recipe{}, 0, fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalidArgument)...)
	}
	if r.Suite == "" {
		r.Suite = DefaultSuite
	}
	if !suiteRE.MatchString(r.Suite) {
		return bad("--suite %q is not a Debian suite name", r.Suite)
	}
	if r.Size == "" {
		r.Size = DefaultSize
	}
	size, err := model.ParseSize(r.Size)
	if err != nil {
		return bad("%v", model.SizeError("--size", r.Size, err))
	}
	if size < 512<<20 {
		return bad("--size %s is too small for a Debian root filesystem (at least 512M)", r.Size)
	}
	r.Size = model.FormatSizeBytes(size)
	var pkgs []string
	for _, p := range r.Packages {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !packageRE.MatchString(p) {
			return bad("--packages: %q is not a Debian package name", p)
		}
		if !slices.Contains(pkgs, p) && !slices.Contains(BasePackages, p) {
			pkgs = append(pkgs, p)
		}
	}
	r.Packages = pkgs
	if r.Mirror != "" {
		u, err := url.Parse(r.Mirror)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") || strings.ContainsAny(r.Mirror, " \t\n'\"") {
			return bad("--mirror %q is not an http, https or file URL", r.Mirror)
		}
	}
	if r.InitrdPath != "" && r.KernelPath == "" {
		return bad("--initrd needs --kernel")
	}
	return r, size, nil
}

// AllPackages is the package list mmdebstrap installs.
func (r Recipe) AllPackages() []string {
	pkgs := append(slices.Clone(BasePackages), r.Packages...)
	if r.KernelPath == "" && !slices.Contains(pkgs, KernelPackage) {
		pkgs = append(pkgs, KernelPackage)
	}
	return pkgs
}

// Hash identifies what a recipe builds, whatever its name: tests cache
// images under it. It covers the whole package list, base packages
// included, so a change to those makes a new image.
func (r Recipe) Hash() string {
	r.Name = ""
	r.Packages = r.AllPackages()
	data, _ := json.Marshal(r)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}
