package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"banger/internal/api"
	"banger/internal/disk"
	"banger/internal/model"
	"banger/internal/rpc"
	"banger/internal/store"
	"banger/internal/testutil/guestboot"
)

// BenchmarkVMCreateNoStart: `banger vm create --no-start` (the whole CLI
// process: RPC, operation, overlay, work disk) against the raw operations
// it wraps, in the same run, per overlay strategy this host offers: copy
// (the data directory on ext4 here) and reflink (on an XFS loop mount).
// The raw operations are a clone of the image's root file system (sparse
// copy or reflink), growing it to the overlay size, and mkfs.ext4 -d of
// a staging tree holding the image's work seed and two keys. (A VM
// created without starting takes no tap; a pool hit costs well under a
// microsecond, see BenchmarkTapCreateDelete.)
func BenchmarkVMCreateNoStart(b *testing.B) {
	for _, strategy := range []string{"copy", "reflink"} {
		b.Run(strategy, func(b *testing.B) {
			var opts []envOption
			cpFlag := "--sparse=always"
			if strategy == "reflink" {
				opts = append(opts, onXFS)
				cpFlag = "--reflink=always"
			}
			e := newBenchEnv(b, "", opts...)
			n := 0
			b.Run("banger", func(b *testing.B) {
				s := newSamples(b, "s/create")
				for b.Loop() {
					n++
					name := fmt.Sprintf("b%d", n)
					t0 := time.Now()
					if r := e.direct("vm", "create", "--no-start", "--name", name); r.code != 0 {
						b.Fatalf("create: %s", r.stderr)
					}
					s.add(time.Since(t0).Seconds())
					b.StopTimer()
					if got := e.show(name).Runtime.OverlayStrategy; got != strategy {
						b.Fatalf("overlay strategy %q, want %q", got, strategy)
					}
					e.must("vm", "rm", name)
					quiesce(b)
					b.StartTimer()
				}
				s.report()
			})
			// The daemon's part alone: vm.create.begin, then operation
			// status until it is done, from this process (no CLI start).
			b.Run("server", func(b *testing.B) {
				sock := filepath.Join(e.run, "banger", "bangerd.sock")
				ctx := context.Background()
				s := newSamples(b, "s/create")
				for b.Loop() {
					n++
					name := fmt.Sprintf("b%d", n)
					t0 := time.Now()
					var op model.Operation
					if err := rpc.Call(ctx, sock, api.MethodVMCreateBegin, api.VMCreateParams{Name: name, NoStart: true}, &op); err != nil {
						b.Fatal(err)
					}
					for after := 0; ; {
						var st api.OperationStatus
						if err := rpc.Call(ctx, sock, api.MethodOperationStatus, api.OperationStatusParams{ID: op.ID, AfterSeq: after, WaitMS: 5000}, &st); err != nil {
							b.Fatal(err)
						}
						if st.State.Done() {
							if st.ErrorMessage != "" {
								b.Fatalf("create: %s", st.ErrorMessage)
							}
							break
						}
						after = st.LastSeq
					}
					s.add(time.Since(t0).Seconds())
					b.StopTimer()
					e.must("vm", "rm", name)
					quiesce(b)
					b.StartTimer()
				}
				s.report()
			})
			b.Run("raw", func(b *testing.B) {
				dir := filepath.Dir(e.image.Rootfs) // the same file system as the image
				if strategy == "copy" {
					dir = b.TempDir()
				}
				stage, err := os.MkdirTemp(dir, "stage")
				if err != nil {
					b.Fatal(err)
				}
				defer os.RemoveAll(stage)
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
				// The overlay is grown only when the image is smaller than
				// the overlay size (4G), as banger grows it.
				fi, err := os.Stat(e.image.Rootfs)
				if err != nil {
					b.Fatal(err)
				}
				grow := fi.Size() < 4<<30
				s := newSamples(b, "s/create")
				for b.Loop() {
					t0 := time.Now()
					overlay, work := filepath.Join(stage, "..", "raw-system.ext4"), filepath.Join(stage, "..", "raw-work.ext4")
					run("cp", cpFlag, e.image.Rootfs, overlay)
					if grow {
						run("truncate", "-s", "4G", overlay)
						run("e2fsck", "-fy", overlay)
						run("resize2fs", overlay)
					}
					run("mkfs.ext4", append(append([]string{"-q", "-F"}, disk.MkfsLazyInit...), "-d", stage, work, "1G")...)
					s.add(time.Since(t0).Seconds())
					b.StopTimer()
					os.Remove(overlay)
					os.Remove(work)
					quiesce(b)
					b.StartTimer()
				}
				s.report()
			})
		})
	}
}

// BenchmarkConcurrentCreate: ten `banger vm create --no-start` at once
// (ten CLI processes), wall time, against one alone, in the same run.
func BenchmarkConcurrentCreate(b *testing.B) {
	e := newBenchEnv(b, "", onXFS)
	n := 0
	create := func(b *testing.B, count int) {
		s := newSamples(b, "s/wall")
		var used, total time.Duration // CPU time used on the machine, and available, while creating
		creates := 0
		for b.Loop() {
			names := make([]string, count)
			for i := range names {
				n++
				names[i] = fmt.Sprintf("c%d", n)
			}
			t0, c0 := time.Now(), readCPUTicks(b)
			var wg sync.WaitGroup
			errs := make([]string, count)
			for i, name := range names {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if r := e.direct("vm", "create", "--no-start", "--name", name); r.code != 0 {
						errs[i] = r.stderr
					}
				}()
			}
			wg.Wait()
			s.add(time.Since(t0).Seconds())
			u, a := readCPUTicks(b).since(c0)
			used, total, creates = used+u, total+a, creates+count
			b.StopTimer()
			for i, name := range names {
				if errs[i] != "" {
					b.Fatalf("create %s: %s", name, errs[i])
				}
				e.must("vm", "rm", name)
			}
			quiesce(b)
			b.StartTimer()
		}
		s.report()
		// Summed over the iterations, and only for ten: /proc/stat
		// counts in 10 ms ticks, too coarse for one create's ~12 ms.
		if count > 1 {
			b.ReportMetric(used.Seconds()*1e3/float64(creates), "cpu-ms/create")
			b.ReportMetric(100*used.Seconds()/total.Seconds(), "busy-pct")
		}
	}
	b.Run("one", func(b *testing.B) { create(b, 1) })
	b.Run("ten", func(b *testing.B) { create(b, 10) })
}

// BenchmarkCreateToSSH: `banger vm create` until it reports the VM
// answering SSH, with each driver, against plain QEMU booting the same
// image until an SSH login works — the same guest, the same emulation,
// in the same run. Each iteration boots all three, one after the other,
// so that drift in the machine's speed over the run falls on each alike;
// their samples are reported as CreateToSSH/qemu, /firecracker and
// /plain-qemu. Run with -benchtime 5x: each boot takes ten seconds or
// more.
func BenchmarkCreateToSSH(b *testing.B) {
	e := newBenchEnv(b, `vmm = "qemu"`+"\n")
	net := guestboot.NewNetwork(b)
	perDriver := map[string]*samples{}
	for _, drv := range drivers {
		perDriver[drv] = newNamedSamples(b, "BenchmarkCreateToSSH/"+drv, "s/to-ssh")
	}
	plain := newNamedSamples(b, "BenchmarkCreateToSSH/plain-qemu", "s/to-ssh")
	n := 0
	for b.Loop() {
		for _, drv := range drivers {
			n++
			name := fmt.Sprintf("s%d", n)
			t0 := time.Now()
			if r := e.direct("vm", "create", "--name", name, "--vmm", drv); r.code != 0 {
				b.Fatalf("create --vmm %s: %s", drv, r.stderr)
			}
			perDriver[drv].add(time.Since(t0).Seconds())
			e.must("vm", "rm", "--force", name)
		}
		t0 := time.Now()
		g := guestboot.Boot(b, net, e.image, "plain", guestboot.Options{MemoryMiB: 512, VCPUs: 1, WorkDisk: "1G"}) // as the VMs banger makes here
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		c, err := g.WaitSSH(ctx)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		plain.add(time.Since(t0).Seconds())
		c.Close()
		g.Cmd.Process.Kill()
		g.Wait(10 * time.Second)
	}
	for _, drv := range drivers {
		perDriver[drv].report()
	}
	plain.report()
}

// BenchmarkDaemonRSS reports bangerd's resident memory once idle, with 0,
// 50 and 1,000 VM records in its store (made directly in the database).
func BenchmarkDaemonRSS(b *testing.B) {
	for _, records := range []int{0, 50, 1000} {
		b.Run(fmt.Sprintf("records=%d", records), func(b *testing.B) {
			e := newBenchEnv(b, "")
			e.must("daemon", "stop")
			addVMRecords(b, filepath.Join(e.home, ".local", "state", "banger", "banger.db"), records)
			e.must("daemon", "start")
			e.must("vm", "ls")          // the records read once, as a user would
			time.Sleep(2 * time.Second) // let start-up work settle
			s := newSamples(b, "MiB-rss")
			for b.Loop() {
				s.add(float64(vmRSSKiB(b, e.daemonPID())) / 1024)
			}
			s.report()
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
			Runtime: model.VMRuntime{GuestIP: fmt.Sprintf("172.17.%d.%d", i/250, i%250+1), VMDir: "/nonexistent/" + id, VMM: "qemu"}}
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

// quiesce flushes every dirty page before the next iteration, so each
// one starts on an idle disk: banger makes a copied overlay durable in
// the background after a create returns, which would otherwise slow the
// next iteration, and the raw copy leaves the same amount dirty.
func quiesce(b *testing.B) {
	if out, err := exec.Command("sync").CombinedOutput(); err != nil {
		b.Fatalf("sync: %v %s", err, out)
	}
}
