package api

import (
	"fmt"

	"banger/internal/errdefs"
	"banger/internal/model"
)

// Request turns create parameters as the wire carries them (sizes as
// users write them) into the seed's request, checking each value given,
// in a fixed order (vCPUs, memory, work disk, overlay), so that of two
// bad values the same one is reported every time. A value left out
// stays zero, which the VM service reads as "the default"; one given is
// never zero after this. Ranges other than the vCPUs' are the VM
// service's, which applies them to defaults as well.
func (p VMCreateParams) Request() (model.VMCreateRequest, error) {
	req := model.VMCreateRequest{Name: p.Name, ImageName: p.Image, NoStart: p.NoStart}
	if p.NAT != nil {
		req.NATEnabled = *p.NAT
	}
	var err error
	if p.VCPUs != nil {
		if err := model.CheckVCPUCount(*p.VCPUs); err != nil {
			return req, invalid("--vcpus %v", err)
		}
		req.VCPUCount = *p.VCPUs
	}
	if p.Memory != nil {
		if req.MemoryMiB, err = parseMemory("--memory", *p.Memory); err != nil {
			return req, err
		}
	}
	if p.Disk != nil {
		if req.WorkDiskSizeBytes, err = parseSize("--disk", *p.Disk); err != nil {
			return req, err
		}
	}
	if p.OverlaySize != nil {
		if req.SystemOverlaySizeByte, err = parseSize("--overlay-size", *p.OverlaySize); err != nil {
			return req, err
		}
	}
	return req, nil
}

// Request turns set parameters into the seed's request for the VM they
// name, as VMCreateParams.Request does. Every value set carries is
// explicit (nil is "leave it"), so the VM service checks the vCPUs.
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
		return 0, errdefs.Mark(errdefs.ErrInvalidArgument, model.SizeError(flag, raw, err))
	}
	return n, nil
}

func parseMemory(flag, raw string) (int, error) {
	n, err := model.ParseMemoryMiB(raw)
	if err != nil {
		return 0, errdefs.Mark(errdefs.ErrInvalidArgument, model.SizeError(flag, raw, err))
	}
	return n, nil
}

// invalid is an ErrInvalidArgument whose message says it all.
func invalid(format string, args ...any) error {
	return errdefs.Mark(errdefs.ErrInvalidArgument, fmt.Errorf(format, args...))
}
