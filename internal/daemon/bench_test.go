package daemon

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
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

// BenchmarkVMCreateNoStart is `vm create --no-start` through the
// daemon's socket, in process, as the CLI drives it (begin, then wait
// on the operation's status), each VM removed again outside the timer:
// for profiling the daemon's part of BenchmarkConcurrentCreate.
func BenchmarkVMCreateNoStart(b *testing.B) {
	d, _ := newWiredDaemon(b, b.TempDir()+"/helper.sock", "bgtap1")
	ctx := context.Background()
	rootfs := filepath.Join(b.TempDir(), "rootfs.ext4")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", rootfs, "64M").CombinedOutput(); err != nil {
		b.Skipf("mkfs.ext4: %v %s", err, out)
	}
	now := model.Now()
	img := model.Image{ID: strings.Repeat("c", 64), Name: "bench", RootfsPath: rootfs, KernelPath: rootfs, CreatedAt: now, UpdatedAt: now}
	if err := d.store.CreateImage(ctx, img); err != nil {
		b.Fatal(err)
	}
	sock := serveDaemon(b, d, b.TempDir())
	n := 0
	for b.Loop() {
		n++
		name := fmt.Sprintf("b%d", n)
		var op model.Operation
		if err := rpc.Call(ctx, sock, api.MethodVMCreateBegin, api.VMCreateParams{Name: name, Image: "bench", NoStart: true, Disk: new("8G")}, &op); err != nil {
			b.Fatal(err)
		}
		var st api.OperationStatus
		for st.State != model.OperationSucceeded {
			if err := rpc.Call(ctx, sock, api.MethodOperationStatus, api.OperationStatusParams{ID: op.ID, AfterSeq: st.LastSeq, WaitMS: 5000}, &st); err != nil {
				b.Fatal(err)
			}
			if st.State == model.OperationFailed {
				b.Fatalf("create: %s", st.ErrorMessage)
			}
		}
		b.StopTimer()
		if err := rpc.Call(ctx, sock, api.MethodVMRemove, api.VMRef{Name: name}, nil); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
