package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"banger/internal/model"
	"banger/internal/store"
	"banger/internal/testutil/guestboot"
)

// BenchmarkVMCreateNoStart: `banger vm create --no-start` (the whole CLI
// process: RPC, operation, overlay, work disk) against the raw operations
// it wraps, in the same run: a sparse copy of the image's root file
// system, growing it to the overlay size, and mkfs.ext4 -d of a staging
// tree holding the image's work seed and two keys.
func BenchmarkVMCreateNoStart(b *testing.B) {
	e := newBenchEnv(b)
	n := 0
	b.Run("banger", func(b *testing.B) {
		for b.Loop() {
			n++
			name := fmt.Sprintf("b%d", n)
			e.must("vm", "create", "--no-start", "--name", name)
			b.StopTimer()
			e.must("vm", "rm", name)
			b.StartTimer()
		}
	})
	b.Run("raw", func(b *testing.B) {
		dir := b.TempDir()
		stage := filepath.Join(dir, "stage")
		run := func(name string, args ...string) {
			if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
				b.Fatalf("%s %v: %v %s", name, args, err, out)
			}
		}
		run("cp", "-a", e.image.WorkSeed+"/.", stage)
		os.MkdirAll(filepath.Join(stage, ".ssh"), 0o700)
		os.WriteFile(filepath.Join(stage, ".ssh", "authorized_keys"), []byte("ssh-ed25519 AAAA test\n"), 0o600)
		os.MkdirAll(filepath.Join(stage, ".banger"), 0o700)
		os.WriteFile(filepath.Join(stage, ".banger", "ssh_host_ed25519_key"), []byte("key\n"), 0o600)
		for b.Loop() {
			overlay, work := filepath.Join(dir, "system.ext4"), filepath.Join(dir, "work.ext4")
			run("cp", "--sparse=always", e.image.Rootfs, overlay)
			run("truncate", "-s", "4G", overlay)
			run("e2fsck", "-fy", overlay)
			run("resize2fs", overlay)
			run("mkfs.ext4", "-q", "-F", "-d", stage, work, "1G")
			b.StopTimer()
			os.Remove(overlay)
			os.Remove(work)
			b.StartTimer()
		}
	})
}

// BenchmarkCreateToSSH: `banger vm create` until it reports the VM
// answering SSH, against plain QEMU booting the same image until an SSH
// login works — the same guest, the same emulation, in the same run.
// Run with -benchtime 3x: each boot takes ten seconds or more.
func BenchmarkCreateToSSH(b *testing.B) {
	e := newBenchEnv(b)
	n := 0
	b.Run("banger", func(b *testing.B) {
		for b.Loop() {
			n++
			name := fmt.Sprintf("s%d", n)
			e.must("vm", "create", "--name", name)
			b.StopTimer()
			e.must("vm", "rm", "--force", name)
			b.StartTimer()
		}
	})
	b.Run("plain-qemu", func(b *testing.B) {
		net := guestboot.NewNetwork(b)
		for b.Loop() {
			g := guestboot.Boot(b, net, e.image, "plain", guestboot.Options{MemoryMiB: 512, VCPUs: 1, WorkDisk: "1G"}) // as the VMs banger makes here
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			c, err := g.WaitSSH(ctx)
			cancel()
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			c.Close()
			g.Cmd.Process.Kill()
			g.Wait(10 * time.Second)
			b.StartTimer()
		}
	})
}

// BenchmarkDaemonRSS reports bangerd's resident memory once idle, with 0
// and with 50 VM records in its store (made directly in the database).
func BenchmarkDaemonRSS(b *testing.B) {
	for _, records := range []int{0, 50} {
		b.Run(fmt.Sprintf("records=%d", records), func(b *testing.B) {
			e := newBenchEnv(b)
			e.must("daemon", "stop")
			addVMRecords(b, filepath.Join(e.home, ".local", "state", "banger", "banger.db"), records)
			e.must("daemon", "start")
			time.Sleep(2 * time.Second) // let start-up work settle
			var rss float64
			for b.Loop() {
				rss = float64(vmRSSKiB(b, e.daemonPID())) / 1024
			}
			b.ReportMetric(rss, "MiB-rss")
		})
	}
}

// addVMRecords inserts stopped VM rows on the first image of the store.
func addVMRecords(b *testing.B, db string, n int) {
	ctx := context.Background()
	st, err := store.Open(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	imgs, err := st.ListImages(ctx)
	if err != nil || len(imgs) == 0 {
		b.Fatalf("no image to attach records to: %v", err)
	}
	now := model.Now()
	for i := 0; i < n; i++ {
		id, _ := model.NewID()
		vm := model.VMRecord{ID: id, Name: fmt.Sprintf("rec%d", i), ImageID: imgs[0].ID, State: model.VMStateStopped,
			CreatedAt: now, UpdatedAt: now, LastTouchedAt: now,
			Spec:    model.VMSpec{VCPUCount: 1, MemoryMiB: 512, SystemOverlaySizeByte: 4 << 30, WorkDiskSizeBytes: 1 << 30},
			Runtime: model.VMRuntime{GuestIP: fmt.Sprintf("172.16.1.%d", i+1), VMDir: "/nonexistent/" + id, VMM: "qemu"}}
		if err := st.CreateVM(ctx, vm); err != nil {
			b.Fatal(err)
		}
	}
}

func vmRSSKiB(b *testing.B, pid int) int {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kib, _ := strconv.Atoi(f[1])
			return kib
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
