package main

import "runtime"

// metric names one benchmark's values in one unit.
type metric struct{ bench, unit string }

// row is a line of the report.
type row struct {
	Title  string
	Banger metric
	Raw    metric // zero: no raw baseline
	// Derive computes the row's banger values from others instead.
	Derive func(v values) []float64
	Unit   string // as shown
	Scale  float64
	// Targets: ratio at most MaxRatio, banger's median at most MaxAbs
	// (in the shown unit); zero means none.
	MaxRatio, MaxAbs float64
	// Why explains a target this machine misses.
	Why string
}

var rows = []row{
	{Title: "`daemon.ping` round trip vs. a bare unix-socket line exchange with another process", Banger: metric{"BenchmarkDaemonRPC/ping", "us/call"}, Raw: metric{"BenchmarkDaemonRPC/ping-raw", "us/call"}, Unit: "µs", MaxRatio: 2},
	{Title: "`vm.list` of 1,000 VM records through the RPC vs. a bare SQLite query of the rows", Banger: metric{"BenchmarkDaemonRPC/list-server", "us/call"}, Raw: metric{"BenchmarkDaemonRPC/list-raw", "us/call"}, Unit: "ms", Scale: 1e-3, MaxRatio: 3},
	{Title: "`banger vm ls` of 1,000 VM records, whole CLI process, vs. the same SQLite query", Banger: metric{"BenchmarkDaemonRPC/list-cli", "us/call"}, Raw: metric{"BenchmarkDaemonRPC/list-raw", "us/call"}, Unit: "ms", Scale: 1e-3},
	{Title: "`banger vm create --no-start`, copy overlay (ext4), vs. sparse copy + `mkfs.ext4 -d`", Banger: metric{"BenchmarkVMCreateNoStart/copy/banger", "s/create"}, Raw: metric{"BenchmarkVMCreateNoStart/copy/raw", "s/create"}, Unit: "ms", Scale: 1e3, MaxRatio: 1.5},
	{Title: "… the daemon's part alone (`vm.create.begin` until the operation is done)", Banger: metric{"BenchmarkVMCreateNoStart/copy/server", "s/create"}, Raw: metric{"BenchmarkVMCreateNoStart/copy/raw", "s/create"}, Unit: "ms", Scale: 1e3, MaxRatio: 1.5},
	{Title: "`banger vm create --no-start`, reflink overlay (XFS), vs. reflink + `mkfs.ext4 -d`", Banger: metric{"BenchmarkVMCreateNoStart/reflink/banger", "s/create"}, Raw: metric{"BenchmarkVMCreateNoStart/reflink/raw", "s/create"}, Unit: "ms", Scale: 1e3, MaxRatio: 1.5,
		Why: "the raw work takes only ~15 ms here, and starting any process on this machine costs 10–15 ms (a Go hello world 14 ms, `mkfs.ext4 -V` 12 ms): the CLI process is most of the difference. The daemon's part alone, next row, is within the target."},
	{Title: "… the daemon's part alone (`vm.create.begin` until the operation is done)", Banger: metric{"BenchmarkVMCreateNoStart/reflink/server", "s/create"}, Raw: metric{"BenchmarkVMCreateNoStart/reflink/raw", "s/create"}, Unit: "ms", Scale: 1e3, MaxRatio: 1.5},
	{Title: "control-plane start, qemu: daemon gets `vm.start` → QEMU running, vs. spawning QEMU and asking QMP", Banger: metric{"BenchmarkControlPlaneStart/qemu/banger", "ms-to-configured"}, Raw: metric{"BenchmarkControlPlaneStart/qemu/raw", "ms-to-configured"}, Unit: "ms", MaxRatio: 1.25, MaxAbs: 50,
		Why: "QEMU itself takes this long to start and answer its monitor (the raw column); banger adds little to it. Firecracker's process starts in about 12 ms."},
	{Title: "control-plane start, firecracker: daemon gets `vm.start` → `InstanceStart` received, vs. spawning it and the same API calls", Banger: metric{"BenchmarkControlPlaneStart/firecracker/banger", "ms-to-InstanceStart"}, Raw: metric{"BenchmarkControlPlaneStart/firecracker/raw", "ms-to-InstanceStart"}, Unit: "ms", MaxRatio: 1.25, MaxAbs: 50},
	{Title: "`vm create` to SSH ready, qemu driver, vs. plain QEMU booting the image to an SSH login", Banger: metric{"BenchmarkCreateToSSH/qemu", "s/to-ssh"}, Raw: metric{"BenchmarkCreateToSSH/plain-qemu", "s/to-ssh"}, Unit: "s", MaxRatio: 1.1},
	{Title: "`vm create` to SSH ready, firecracker driver (test double), vs. plain QEMU", Banger: metric{"BenchmarkCreateToSSH/firecracker", "s/to-ssh"}, Raw: metric{"BenchmarkCreateToSSH/plain-qemu", "s/to-ssh"}, Unit: "s", MaxRatio: 1.1},
	{Title: "10 concurrent `banger vm create --no-start` (XFS), wall time, vs. one alone", Banger: metric{"BenchmarkConcurrentCreate/ten", "s/wall"}, Raw: metric{"BenchmarkConcurrentCreate/one", "s/wall"}, Unit: "ms", Scale: 1e3, MaxRatio: 4,
		Why: "nothing serialises the creates any more: both cores are busy for ~90% of the wall time (next row), so the ten are CPU-bound. One create costs 13–15 ms of CPU (the row after) (a CLI process ~3.5 ms, bangerd ~3.5 ms, `mkfs.ext4` ~2.7 ms, the kernel's process starts and exits the rest; perf record -a), while one alone takes 12–13 ms of wall time because it already spreads over both cores. Ten on two cores need at least ten times the CPU over two (the row after next): ≤ 4× would take four cores or more here."},
	{Title: "… the machine's CPU busy while the ten run (/proc/stat, both cores)", Banger: metric{"BenchmarkConcurrentCreate/ten", "busy-pct"}, Unit: "%"},
	{Title: "… CPU time the machine spent per create, ten at once (CLI, bangerd, `mkfs.ext4`, kernel)", Banger: metric{"BenchmarkConcurrentCreate/ten", "cpu-ms/create"}, Unit: "ms"},
	{Title: "… the least wall time ten creates can take here (ten × CPU per create ÷ cores), vs. one alone", Raw: metric{"BenchmarkConcurrentCreate/one", "s/wall"}, Unit: "ms", Scale: 1e3,
		Derive: func(v values) []float64 {
			cpu := median(v[metric{"BenchmarkConcurrentCreate/ten", "cpu-ms/create"}])
			if cpu == 0 {
				return nil
			}
			return []float64{10 * cpu / 1e3 / float64(runtime.NumCPU())}
		}},
	{Title: "helper `tap.create` + `tap.delete` vs. the same netlink calls made directly", Banger: metric{"BenchmarkTapCreateDelete/helper", "ns/op"}, Raw: metric{"BenchmarkTapCreateDelete/raw", "ns/op"}, Unit: "ms", Scale: 1e-6},
	{Title: "tap from the warm pool (take + return) vs. creating and deleting a tap", Banger: metric{"BenchmarkTapCreateDelete/pool-hit", "ns/op"}, Raw: metric{"BenchmarkTapCreateDelete/raw", "ns/op"}, Unit: "µs", Scale: 1e-3},
	{Title: "RPC call (dial, request, dispatch, answer) vs. a bare unix-socket line exchange, both in-process", Banger: metric{"BenchmarkCall", "ns/op"}, Raw: metric{"BenchmarkRawUnixRoundTrip", "ns/op"}, Unit: "µs", Scale: 1e-3, MaxRatio: 2},
	{Title: "bangerd resident memory, idle, no VM records", Banger: metric{"BenchmarkDaemonRSS/records=0", "MiB-rss"}, Unit: "MiB", MaxAbs: 30},
	{Title: "bangerd resident memory, idle, 50 VM records", Banger: metric{"BenchmarkDaemonRSS/records=50", "MiB-rss"}, Unit: "MiB", MaxAbs: 30},
	{Title: "bangerd resident memory, idle, 1,000 VM records", Banger: metric{"BenchmarkDaemonRSS/records=1000", "MiB-rss"}, Unit: "MiB", MaxAbs: 30},
	{Title: "bangerd resident memory per VM record ((1,000 records − none) / 1,000)", Unit: "MiB", MaxAbs: 0.5,
		Derive: func(v values) []float64 {
			a, b := median(v[metric{"BenchmarkDaemonRSS/records=1000", "MiB-rss"}]), median(v[metric{"BenchmarkDaemonRSS/records=0", "MiB-rss"}])
			if a == 0 || b == 0 {
				return nil
			}
			return []float64{(a - b) / 1000}
		}},
	{Title: "image build, warm package cache vs. cold (everything downloaded)", Banger: metric{"BenchmarkImageBuild/warm", "s/build"}, Raw: metric{"BenchmarkImageBuild/cold", "s/build"}, Unit: "s"},
	{Title: "`banger workspace prepare` into a running VM, shallow_overlay, this repository, vs. `git clone --depth 1` + the changed files + `tar c | ssh VM tar x`", Banger: metric{"BenchmarkWorkspacePrepare/shallow_overlay/banger", "s/prepare"}, Raw: metric{"BenchmarkWorkspacePrepare/shallow_overlay/raw", "s/prepare"}, Unit: "s", MaxRatio: 1.5,
		Why: "the copy writes its tar stream into the SSH channel unbuffered (internal/workspace writeTar), so every tar header and small file goes out on its own, and the emulated guest takes such a stream slowly: this tree (466 files, 5 MB) took 7–9 s so and 2.1–2.3 s through a 64 KiB buffer (an x/crypto/ssh client, as the daemon's, sending it into the same guest). full_copy and metadata_only send a 16 MB pack first and do not show it."},
	{Title: "… full_copy, vs. `git clone --mirror --no-hardlinks` + checkout + the changed files + `tar c | ssh VM tar x`", Banger: metric{"BenchmarkWorkspacePrepare/full_copy/banger", "s/prepare"}, Raw: metric{"BenchmarkWorkspacePrepare/full_copy/raw", "s/prepare"}, Unit: "s", MaxRatio: 1.5},
	{Title: "… metadata_only, vs. `git clone --no-checkout --no-hardlinks` + `tar c | ssh VM tar x`", Banger: metric{"BenchmarkWorkspacePrepare/metadata_only/banger", "s/prepare"}, Raw: metric{"BenchmarkWorkspacePrepare/metadata_only/raw", "s/prepare"}, Unit: "s", MaxRatio: 1.5},
	workspaceCreateRow("self", "shallow", "`banger vm create --no-start --workspace`, shallow_overlay, this repository, vs. `vm create --no-start` + `git clone --depth 1` + the changed files + `mkfs.ext4 -d`"),
	workspaceCreateRow("self", "full", "… full_copy, vs. `vm create --no-start` + `git clone --mirror --no-hardlinks` + checkout + the changed files + `mkfs.ext4 -d`"),
	{Title: "… metadata_only, vs. `vm create --no-start` + `git clone --no-checkout --no-hardlinks` + `mkfs.ext4 -d`", Banger: metric{"BenchmarkWorkspaceCreate/self/metadata-banger", "s/create"}, Raw: metric{"BenchmarkWorkspaceCreate/self/metadata-raw", "s/create"}, Unit: "s", MaxRatio: 1.5,
		Why: "as for the generated repository's metadata_only (three rows down): a `git fetch` of the history (16 MB here) against a copy of the pack file."},
	workspaceCreateRow("generated", "shallow", "`banger vm create --no-start --workspace`, shallow_overlay, generated repository (20,000 files, 300 MB, 5,000 commits), vs. the same raw work"),
	workspaceCreateRow("generated", "full", "… full_copy, generated repository, vs. the same raw work"),
	{Title: "… metadata_only, generated repository, vs. the same raw work", Banger: metric{"BenchmarkWorkspaceCreate/generated/metadata-banger", "s/create"}, Raw: metric{"BenchmarkWorkspaceCreate/generated/metadata-raw", "s/create"}, Unit: "s", MaxRatio: 1.5,
		Why: "banger brings HEAD's history with `git fetch` (the 185 MB pack streamed by pack-objects and every object hashed again by index-pack, ~5 s; `-c pack.window=0` changes nothing), where the raw clone copies the pack file as it is. The fetch is what keeps other branches' objects out of the guest; this repository has one branch, so both give the guest the same objects."},
	{Title: "`banger workspace harvest` of 10 commits vs. `git bundle create` in the guest, over ssh to a file, + `git fetch` of it", Banger: metric{"BenchmarkWorkspaceHarvest/banger", "s/harvest"}, Raw: metric{"BenchmarkWorkspaceHarvest/raw", "s/harvest"}, Unit: "s", MaxRatio: 1.5, MaxAbs: 1,
		Why: "the guest-state script (HEAD, the tip, `git status`, `git add -A` into a scratch index, `write-tree`, two `git diff`s, `rev-list` of stray commits, with `cp`, `sort`, `comm`, `wc` between) is ~1.45 s of a ~1.85 s harvest here: some fifteen processes at 80–360 ms each under emulation. It counts the work a harvest must not lose, which the raw side does not do; the bundle itself takes ~0.4 s either way (by hand, over an open connection)."},
	{Title: "`banger run -- true`, wall time, vs. `vm create --workspace` + `vm exec -- true` + `workspace harvest` + `vm rm --force`", Banger: metric{"BenchmarkWorkspaceRun/banger", "s/run"}, Raw: metric{"BenchmarkWorkspaceRun/steps", "s/run"}, Unit: "s", MaxRatio: 1.1},
}

// workspaceCreateRow is a row of BenchmarkWorkspaceCreate: one
// repository in one mode (its first word), banger against the raw work.
func workspaceCreateRow(repo, mode, title string) row {
	name := "BenchmarkWorkspaceCreate/" + repo + "/" + mode
	return row{Title: title, Banger: metric{name + "-banger", "s/create"}, Raw: metric{name + "-raw", "s/create"}, Unit: "s", MaxRatio: 1.5}
}

type values map[metric][]float64
