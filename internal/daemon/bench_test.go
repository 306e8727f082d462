package daemon

import (
	"context"
	"fmt"
	"testing"

	"banger/internal/api"
	"banger/internal/model"
	"banger/internal/rpc"
)

// BenchmarkVMList is vm.list of 1,000 stopped VMs through the daemon's
// socket, in process, for profiling the path make bench measures
// (BenchmarkDaemonRPC/list-server).
func BenchmarkVMList(b *testing.B) {
	d, _ := newWiredDaemon(b, b.TempDir()+"/helper.sock", "bgtap1")
	ctx := context.Background()
	addRecords(b, d)
	sock := serveDaemon(b, d, b.TempDir())
	for b.Loop() {
		var vms []api.VMDetail
		if err := rpc.Call(ctx, sock, api.MethodVMList, nil, &vms); err != nil || len(vms) != 1000 {
			b.Fatalf("vm.list: %d vms, %v", len(vms), err)
		}
	}
}

// addRecords adds 999 stopped VMs to the wired daemon's one, as make
// bench's records look.
func addRecords(b *testing.B, d *Daemon) {
	ctx := context.Background()
	vm, err := d.store.FindVM(ctx, "dev")
	if err != nil {
		b.Fatal(err)
	}
	for i := range 999 {
		id, _ := model.NewID()
		rec := vm
		rec.ID, rec.Name = id, fmt.Sprintf("rec%d", i)
		rec.Spec = model.VMSpec{VCPUCount: 1, MemoryMiB: 512, SystemOverlaySizeByte: 4 << 30, WorkDiskSizeBytes: 1 << 30}
		rec.Runtime = model.VMRuntime{GuestIP: fmt.Sprintf("172.17.%d.%d", i/250, i%250+1), VMDir: "/nonexistent/" + id, VMM: "qemu"}
		if err := d.store.CreateVM(ctx, rec); err != nil {
			b.Fatal(err)
		}
	}
}
