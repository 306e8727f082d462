package api

import (
	"fmt"

	"banger/internal/errdefs"
	"banger/internal/model"
)

// Request turns create parameters as the wire carries them (sizes as
// users write them) into the seed's request, checking the syntax of each
// value in a fixed order (vCPUs, memory, work disk, overlay), so that of
// two bad values the same one is reported every time. Ranges and
// defaults are the VM service's.
func (p VMCreateParams) Request() (model.VMCreateRequest, error) {
	req := model.VMCreateRequest{Name: p.Name, ImageName: p.Image, VCPUCount: p.VCPUs, NoStart: p.NoStart}
	if p.NAT != nil {
		req.NATEnabled = *p.NAT
	}
	var err error
	if p.Memory != "" {
		if req.MemoryMiB, err = parseMemory("--memory", p.Memory); err != nil {
			return req, err
		}
	}
	if p.Disk != "" {
		if req.WorkDiskSizeBytes, err = parseSize("--disk", p.Disk); err != nil {
			return req, err
		}
	}
	if p.OverlaySize != "" {
		if req.SystemOverlaySizeByte, err = parseSize("--overlay-size", p.OverlaySize); err != nil {
			return req, err
		}
	}
	return req, nil
}

// Request turns set parameters into the seed's request for the VM they
// name, as VMCreateParams.Request does.
func (p VMSetParams) Request() (model.VMSetRequest, error) {
	req := model.VMSetRequest{IDOrName: p.Name, VCPUCount: p.VCPUs, NATEnabled: p.NAT}
	if p.Memory != nil {
		mib, err := parseMemory("--memory", *p.Memory)
		if err != nil {
			return req, err
		}
		req.MemoryMiB = &mib
	}
	if p.Disk != nil {
		n, err := parseSize("--disk", *p.Disk)
		if err != nil {
			return req, err
		}
		req.WorkDiskSizeBytes = &n
	}
	return req, nil
}

func parseSize(flag, raw string) (int64, error) {
	n, err := model.ParseSize(raw)
	if err != nil {
		return 0, errdefs.Mark(errdefs.ErrInvalidArgument, fmt.Errorf("%s %q: %v; use %s", flag, raw, err, model.SizeSyntax))
	}
	return n, nil
}

func parseMemory(flag, raw string) (int, error) {
	n, err := model.ParseMemoryMiB(raw)
	if err != nil {
		return 0, errdefs.Mark(errdefs.ErrInvalidArgument, fmt.Errorf("%s %q: %v; use %s", flag, raw, err, model.SizeSyntax))
	}
	return n, nil
}
