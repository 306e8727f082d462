package api

import (
	"errors"
	"testing"

	"banger/internal/errdefs"
	"banger/internal/model"
)

// TestCreateRequestExplicitValues: a value left out is "the default"
// (zero in the seed's request); a value given is checked as given, so an
// explicit 0 vCPUs or an empty size is an error naming the flag and what
// is accepted, never the default in disguise.
func TestCreateRequestExplicitValues(t *testing.T) {
	req, err := VMCreateParams{Name: "dev"}.Request()
	if err != nil || req.VCPUCount != 0 || req.MemoryMiB != 0 || req.WorkDiskSizeBytes != 0 || req.SystemOverlaySizeByte != 0 {
		t.Fatalf("nothing given: %+v, %v; want all zero (the defaults)", req, err)
	}
	req, err = VMCreateParams{VCPUs: new(4), Memory: new("1536M"), Disk: new("2G"), OverlaySize: new("4096")}.Request()
	want := model.VMCreateRequest{VCPUCount: 4, MemoryMiB: 1536, WorkDiskSizeBytes: 2 << 30, SystemOverlaySizeByte: 4 << 30}
	if err != nil || req != want {
		t.Fatalf("all given: %+v, %v; want %+v", req, err, want)
	}
	const syntax = "; use a whole number with K, M or G, e.g. 1536M or 8G (a bare number is MiB)"
	for _, tc := range []struct {
		name string
		p    VMCreateParams
		want string
	}{
		{"vcpus 0", VMCreateParams{VCPUs: new(0)}, "--vcpus 0 is outside 1..32"},
		{"vcpus 33", VMCreateParams{VCPUs: new(33)}, "--vcpus 33 is outside 1..32"},
		{"vcpus negative", VMCreateParams{VCPUs: new(-1)}, "--vcpus -1 is outside 1..32"},
		{"memory empty", VMCreateParams{Memory: new("")}, `--memory "": no size given` + syntax},
		{"memory 0", VMCreateParams{Memory: new("0")}, `--memory "0": not more than 0` + syntax},
		{"memory in K", VMCreateParams{Memory: new("1537K")}, `--memory "1537K": not a whole number of MiB` + syntax},
		{"disk not whole", VMCreateParams{Disk: new("1.5G")}, `--disk "1.5G": "1.5" is not a whole number` + syntax},
		{"disk words", VMCreateParams{Disk: new("abc")}, `--disk "abc": not a size` + syntax},
		{"overlay unit", VMCreateParams{OverlaySize: new("8GB")}, `--overlay-size "8GB": unit "B" is not K, M or G` + syntax},
		// In a fixed order: vCPUs before memory before the disks.
		{"two bad", VMCreateParams{VCPUs: new(0), Disk: new("x")}, "--vcpus 0 is outside 1..32"},
		{"two bad sizes", VMCreateParams{Memory: new("x"), Disk: new("y")}, `--memory "x": not a size` + syntax},
	} {
		_, err := tc.p.Request()
		if err == nil || err.Error() != tc.want || !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v; want bad request %q", tc.name, err, tc.want)
		}
	}
}

// TestSetRequestSizes: set's sizes are read as create's; its vCPUs are
// the VM service's to check against the VM.
func TestSetRequestSizes(t *testing.T) {
	req, err := VMSetParams{Name: "dev", VCPUs: new(0), Memory: new("2G"), Disk: new("16G")}.Request()
	if err != nil || *req.VCPUCount != 0 || *req.MemoryMiB != 2048 || *req.WorkDiskSizeBytes != 16<<30 || req.NATEnabled != nil {
		t.Fatalf("set: %+v, %v", req, err)
	}
	if _, err := (VMSetParams{Name: "dev", Disk: new("1.5G")}).Request(); err == nil || err.Error() != `--disk "1.5G": "1.5" is not a whole number; use a whole number with K, M or G, e.g. 1536M or 8G (a bare number is MiB)` {
		t.Errorf("set --disk 1.5G: %v", err)
	}
}
