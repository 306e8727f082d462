// Command harness is `make bench`: it runs every benchmark banger has —
// Go benchmarks in the packages, and the end-to-end ones that drive real
// bangerd, banger-helper and guest processes (test/e2e) — then writes
//
//	bench/results/<date>-<host>.txt   the raw `go test -bench` output (benchstat reads it)
//	bench/results/<date>-<host>.json  every row and every sample
//	bench/REPORT.md                   the table, regenerated
//
// and puts the same table into README.md between its bench markers.
// Each row holds banger's median and p90 against the raw operation it
// wraps, measured in the same run, their ratio and the target.
//
// Benchmarks that time a span inside a run (a start up to InstanceStart)
// or a whole process report each iteration to the file named by
// $BANGER_BENCH_SAMPLES; the others give one value per -count run.
//
// Interrupted (Ctrl-C, SIGTERM), it stops the benchmark process group and
// sweeps what a killed benchmark may leave: processes in its network
// namespaces (bgt-*) and the namespaces, XFS loop mounts
// (banger-bench-xfs*), and the temporary directories made since it
// started.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// step is one `go test` run.
type step struct {
	bench, benchtime, count string
	pkgs                    []string
}

var steps = []step{
	{bench: ".", count: "5", pkgs: []string{"./internal/rpc", "./internal/helper", "./internal/disk"}},
	{bench: "^BenchmarkDaemonRPC$", benchtime: "1s", pkgs: []string{"./test/e2e"}},
	{bench: "^BenchmarkVMCreateNoStart$", benchtime: "5x", pkgs: []string{"./test/e2e"}},
	{bench: "^BenchmarkConcurrentCreate$", benchtime: "3x", pkgs: []string{"./test/e2e"}},
	{bench: "^BenchmarkDaemonRSS$", benchtime: "5x", pkgs: []string{"./test/e2e"}},
	{bench: "^BenchmarkControlPlaneStart$", benchtime: "5x", pkgs: []string{"./test/e2e"}},
	{bench: "^BenchmarkCreateToSSH$", benchtime: "5x", pkgs: []string{"./test/e2e"}},
	{bench: "^BenchmarkImageBuild$", benchtime: "1x", pkgs: []string{"./test/e2e"}},
}

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
	{Title: "`daemon.ping` round trip vs. a bare unix-socket line exchange", Banger: metric{"BenchmarkDaemonRPC/ping", "us/call"}, Raw: metric{"BenchmarkDaemonRPC/ping-raw", "us/call"}, Unit: "µs"},
	{Title: "`vm.list` of 1,000 VM records through the RPC vs. a bare SQLite query of the rows", Banger: metric{"BenchmarkDaemonRPC/list-server", "us/call"}, Raw: metric{"BenchmarkDaemonRPC/list-raw", "us/call"}, Unit: "ms", Scale: 1e-3},
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
	{Title: "10 concurrent `banger vm create --no-start` (XFS), wall time, vs. one alone", Banger: metric{"BenchmarkConcurrentCreate/ten", "s/wall"}, Raw: metric{"BenchmarkConcurrentCreate/one", "s/wall"}, Unit: "ms", Scale: 1e3, MaxRatio: 3,
		Why: "ten creates share two cores, and most of one create is CPU: a CLI process start (10–15 ms of it here), a `mkfs.ext4` process and an fsync; ten of them cannot overlap on two cores."},
	{Title: "helper `tap.create` + `tap.delete` vs. the same netlink calls made directly", Banger: metric{"BenchmarkTapCreateDelete/helper", "ns/op"}, Raw: metric{"BenchmarkTapCreateDelete/raw", "ns/op"}, Unit: "ms", Scale: 1e-6},
	{Title: "tap from the warm pool (take + return) vs. creating and deleting a tap", Banger: metric{"BenchmarkTapCreateDelete/pool-hit", "ns/op"}, Raw: metric{"BenchmarkTapCreateDelete/raw", "ns/op"}, Unit: "µs", Scale: 1e-3},
	{Title: "RPC call (dial, request, dispatch, answer) vs. a bare unix-socket line exchange, in-process", Banger: metric{"BenchmarkCall", "ns/op"}, Raw: metric{"BenchmarkRawUnixRoundTrip", "ns/op"}, Unit: "µs", Scale: 1e-3},
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
}

type values map[metric][]float64

// Stat is a median and p90 over N values, in the row's unit.
type Stat struct {
	Median float64 `json:"median"`
	P90    float64 `json:"p90"`
	N      int     `json:"n"`
}

// Result is a row as the JSON file keeps it.
type Result struct {
	Title    string  `json:"title"`
	Unit     string  `json:"unit"`
	Banger   *Stat   `json:"banger,omitempty"`
	Raw      *Stat   `json:"raw,omitempty"`
	Ratio    float64 `json:"ratio,omitempty"`
	Target   string  `json:"target,omitempty"`
	Met      *bool   `json:"met,omitempty"`
	Why      string  `json:"why_missed,omitempty"`
	Measured bool    `json:"measured"`
}

// Report is the JSON file.
type Report struct {
	Date      string               `json:"date"`
	Host      string               `json:"host"`
	CPU       string               `json:"cpu"`
	Cores     int                  `json:"cores"`
	GoVersion string               `json:"go_version"`
	Commit    string               `json:"commit"`
	Duration  string               `json:"duration"`
	Rows      []Result             `json:"rows"`
	Samples   map[string][]float64 `json:"samples"` // "benchmark unit" → values
}

func main() {
	only := flag.String("only", "", "run only the steps whose -bench pattern contains this, and print the table without writing the report")
	flag.Parse()
	root, err := moduleRoot()
	if err != nil {
		fatal(err)
	}
	os.Chdir(root)
	started := time.Now()
	host, _ := os.Hostname()
	stamp := started.Format("2006-01-02") + "-" + host
	rawPath := filepath.Join("bench/results", stamp+".txt")
	if *only != "" {
		// A partial run leaves the report and the results alone.
		rawPath = filepath.Join(os.TempDir(), fmt.Sprintf("banger-bench-%d.txt", os.Getpid()))
		defer os.Remove(rawPath)
	}
	os.MkdirAll("bench/results", 0o755)
	rawOut, err := os.Create(rawPath)
	if err != nil {
		fatal(err)
	}
	defer rawOut.Close()
	samplesFile := filepath.Join(os.TempDir(), fmt.Sprintf("banger-bench-samples-%d.jsonl", os.Getpid()))
	os.Remove(samplesFile)
	defer os.Remove(samplesFile)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	vals := values{}
	for _, s := range steps {
		if *only != "" && !strings.Contains(s.bench, *only) {
			continue
		}
		if err := runStep(s, rawOut, samplesFile, vals, sigs); err != nil {
			if errors.Is(err, errInterrupted) {
				fmt.Fprintln(os.Stderr, "bench: interrupted; cleaning up what the benchmarks made")
				sweep(started)
				os.Exit(130)
			}
			fmt.Fprintf(os.Stderr, "bench: %v (continuing; its rows will be missing)\n", err)
		}
	}
	if err := readSamples(samplesFile, vals); err != nil {
		fatal(err)
	}
	rep := Report{
		Date: started.Format(time.RFC3339), Host: host, CPU: cpuModel(), Cores: runtime.NumCPU(),
		GoVersion: runtime.Version(), Commit: gitCommit(), Duration: time.Since(started).Round(time.Second).String(),
		Samples: map[string][]float64{},
	}
	for m, v := range vals {
		rep.Samples[m.bench+" "+m.unit] = v
	}
	for _, r := range rows {
		rep.Rows = append(rep.Rows, evaluate(r, vals))
	}
	table := markdownTable(rep)
	if *only != "" {
		fmt.Printf("\n%s\nbench: a partial run (-only %s); bench/REPORT.md and README.md are left as they were\n", table, *only)
		return
	}
	data, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.WriteFile(filepath.Join("bench/results", stamp+".json"), append(data, '\n'), 0o644); err != nil {
		fatal(err)
	}
	md := fmt.Sprintf("# Benchmark report\n\nGenerated by `make bench` (`go run ./bench/harness`) on %s: host %s, %s, %d cores, %s, commit %s; the run took %s. Raw output: `bench/results/%s.txt`; every sample: `bench/results/%s.json`.\n\n%s",
		started.Format("2006-01-02 15:04 MST"), host, rep.CPU, rep.Cores, rep.GoVersion, rep.Commit, rep.Duration, stamp, stamp, table)
	if err := os.WriteFile("bench/REPORT.md", []byte(md), 0o644); err != nil {
		fatal(err)
	}
	if err := updateReadme("README.md", table); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
	}
	fmt.Printf("\n%s\nbench: wrote bench/REPORT.md and bench/results/%s.{json,txt} in %s\n", table, stamp, rep.Duration)
}

var errInterrupted = errors.New("interrupted")

// runStep runs one `go test -bench` in a process group of its own,
// copying its output to the terminal and the raw file, and parses its
// benchmark lines into vals.
func runStep(s step, rawOut io.Writer, samplesFile string, vals values, sigs chan os.Signal) error {
	args := []string{"test", "-run", "^$", "-bench", s.bench, "-benchmem", "-timeout", "60m"}
	if s.benchtime != "" {
		args = append(args, "-benchtime", s.benchtime)
	}
	if s.count != "" {
		args = append(args, "-count", s.count)
	}
	args = append(args, s.pkgs...)
	fmt.Printf("bench: go %s\n", strings.Join(args, " "))
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "BANGER_BENCH_SAMPLES="+samplesFile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); pw.Close() }()
	parsed := make(chan struct{})
	go func() {
		defer close(parsed)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Text()
			// The daemon logs tests print on failure are long JSON lines;
			// the terminal gets the benchmark lines and messages.
			if !strings.HasPrefix(strings.TrimSpace(line), "{") {
				fmt.Println(line)
			}
			fmt.Fprintln(rawOut, line)
			parseLine(line, vals)
		}
	}()
	select {
	case err := <-done:
		<-parsed
		if err != nil {
			return fmt.Errorf("go test -bench %s: %w", s.bench, err)
		}
		return nil
	case <-sigs:
		syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // whatever of the group is left
		return errInterrupted
	}
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+(.+)$`)

// parseLine reads "BenchmarkX/y-2  5  123 ns/op  4.5 ms-to-x ..." into
// vals: one value per metric per line.
func parseLine(line string, vals values) {
	m := benchLine.FindStringSubmatch(line)
	if m == nil {
		return
	}
	f := strings.Fields(m[3])
	for i := 0; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return
		}
		k := metric{m[1], f[i+1]}
		vals[k] = append(vals[k], v)
	}
}

// readSamples puts the per-iteration samples in vals, in place of the
// per-run values of the same metric.
func readSamples(path string, vals values) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	got := values{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for sc.Scan() {
		var s struct {
			Benchmark string    `json:"benchmark"`
			Unit      string    `json:"unit"`
			Values    []float64 `json:"values"`
		}
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			return fmt.Errorf("samples: %w", err)
		}
		k := metric{s.Benchmark, s.Unit}
		got[k] = append(got[k], s.Values...)
	}
	for k, v := range got {
		vals[k] = v
	}
	return sc.Err()
}

func evaluate(r row, v values) Result {
	scale := r.Scale
	if scale == 0 {
		scale = 1
	}
	res := Result{Title: r.Title, Unit: r.Unit}
	var bv []float64
	if r.Derive != nil {
		bv = r.Derive(v)
	} else {
		bv = v[r.Banger]
	}
	if len(bv) > 0 {
		res.Banger = stat(bv, scale)
		res.Measured = true
	}
	if r.Raw != (metric{}) {
		if rv := v[r.Raw]; len(rv) > 0 {
			res.Raw = stat(rv, scale)
		}
	}
	if res.Banger != nil && res.Raw != nil && res.Raw.Median > 0 {
		res.Ratio = res.Banger.Median / res.Raw.Median
	}
	var targets []string
	if r.MaxRatio > 0 {
		targets = append(targets, fmt.Sprintf("≤ %.4g×", r.MaxRatio))
	}
	if r.MaxAbs > 0 {
		targets = append(targets, fmt.Sprintf("< %.4g %s", r.MaxAbs, r.Unit))
	}
	res.Target = strings.Join(targets, ", ")
	if res.Target != "" && res.Banger != nil && (r.MaxRatio == 0 || res.Raw != nil) {
		met := (r.MaxRatio == 0 || res.Ratio <= r.MaxRatio) && (r.MaxAbs == 0 || res.Banger.Median < r.MaxAbs)
		res.Met = &met
		if !met {
			res.Why = r.Why
		}
	}
	return res
}

func stat(v []float64, scale float64) *Stat {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return &Stat{Median: median(s) * scale, P90: percentile(s, 0.9) * scale, N: len(s)}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// percentile of sorted values, nearest rank.
func percentile(sorted []float64, p float64) float64 {
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func markdownTable(rep Report) string {
	var b strings.Builder
	b.WriteString("| measured | unit | banger median | banger p90 | raw median | raw p90 | ratio | target | |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|---|---|\n")
	var why []string
	for _, r := range rep.Rows {
		cells := []string{r.Title, r.Unit, "—", "—", "—", "—", "—", orDash(r.Target), ""}
		if r.Banger != nil {
			cells[2], cells[3] = num(r.Banger.Median), num(r.Banger.P90)
		}
		if r.Raw != nil {
			cells[4], cells[5] = num(r.Raw.Median), num(r.Raw.P90)
		}
		if r.Ratio > 0 {
			cells[6] = fmt.Sprintf("%.2f×", r.Ratio)
		}
		switch {
		case !r.Measured:
			cells[8] = "not measured"
		case r.Met != nil && *r.Met:
			cells[8] = "met"
		case r.Met != nil:
			cells[8] = "**missed**"
			if r.Why != "" {
				why = append(why, fmt.Sprintf("- %s: %s", r.Title, r.Why))
			}
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	if len(why) > 0 {
		b.WriteString("\nMissed targets:\n\n" + strings.Join(why, "\n") + "\n")
	}
	return b.String()
}

func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case v >= 0.01:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 2, 64)
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

const (
	readmeStart = "<!-- bench-table:start (make bench rewrites this) -->"
	readmeEnd   = "<!-- bench-table:end -->"
)

func updateReadme(path, table string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(data)
	i, j := strings.Index(s, readmeStart), strings.Index(s, readmeEnd)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no bench table markers; not updated", path)
	}
	s = s[:i+len(readmeStart)] + "\n" + table + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}

// sweep removes what benchmarks killed mid-run leave behind: processes in
// their network namespaces and the namespaces, loop-mounted XFS file
// systems, and temporary directories made since start (unmounting
// anything still mounted under them first).
func sweep(start time.Time) {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line) // "bgt-1a2b3c4d (id: 3)"
		if len(f) == 0 || !strings.HasPrefix(f[0], "bgt-") {
			continue
		}
		name := f[0]
		pids, _ := exec.Command("ip", "netns", "pids", name).Output()
		for _, p := range strings.Fields(string(pids)) {
			if pid, err := strconv.Atoi(p); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(200 * time.Millisecond)
		exec.Command("ip", "netns", "delete", name).Run()
		fmt.Fprintln(os.Stderr, "bench: removed network namespace", name)
	}
	var dirs []string
	for _, pattern := range []string{"Benchmark*", "banger-bench-xfs*", "bgu*", "bgh*", "bcp*", "bcq*", "bge*", "banger-bin*", "banger-fcdouble*"} {
		matches, _ := filepath.Glob(filepath.Join(os.TempDir(), pattern))
		for _, m := range matches {
			if fi, err := os.Stat(m); err == nil && fi.IsDir() && !fi.ModTime().Before(start) {
				dirs = append(dirs, m)
			}
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mounts")
	var points []string
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			for _, d := range dirs {
				if strings.HasPrefix(f[1], d+"/") {
					points = append(points, f[1])
				}
			}
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points))) // deepest first
	for _, p := range points {
		exec.Command("umount", "-l", p).Run()
		fmt.Fprintln(os.Stderr, "bench: unmounted", p)
	}
	for _, d := range dirs {
		os.RemoveAll(d)
	}
	if len(dirs) > 0 {
		fmt.Fprintf(os.Stderr, "bench: removed %d temporary directories\n", len(dirs))
	}
}

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func gitCommit() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func moduleRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.HasPrefix(string(data), "module banger") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("bench: run it inside the banger tree")
		}
		d = filepath.Dir(d)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
