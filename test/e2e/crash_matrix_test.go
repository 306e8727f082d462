package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"banger/internal/failpoint"
)

// The crash matrix: restart recovery as a table. Each row is a verb, each
// point a boundary of it — a stage as bangerd logs it, or the verb's end
// — where a failpoint (internal/failpoint) holds the daemon while one of
// the three processes is killed with SIGKILL. Then what was killed is
// restarted, and every cell must leave the VM in a state the user can
// act on, `vm rm` must remove it, and nothing may be left behind.

// crashTargets are the processes each point kills, one per cell.
var crashTargets = []string{"bangerd", "banger-helper", "vmm"}

// vmPre is where a row's VM must be before its verb runs.
type vmPre int

const (
	preNone    vmPre = iota // no VM: the verb makes it
	preCreated              // created with --no-start
	preRunning              // running (its VMM started, then adopted by a restarted bangerd)
)

// crashRow is one verb of the matrix.
type crashRow struct {
	verb   string
	pre    vmPre
	args   func(name string) []string
	points []crashPoint
}

// crashPoint is one boundary of a verb: its failpoint, whether a VMM
// runs for the VM there (the VMM column applies only then), and whether
// the verb must boot a guest to SSH to get there or, with the helper
// killed, to end (such cells take a guest boot, ~17 s under TCG).
type crashPoint struct {
	name  string
	vmm   bool
	boots bool
}

func crashRows() []crashRow {
	return []crashRow{
		{"create", preNone, func(n string) []string { return []string{"vm", "create", "--name", n, "--nat"} }, []crashPoint{
			{name: "vm.create:validate"}, {name: "vm.create:allocate"}, {name: "vm.create:system overlay"},
			{name: "vm.create:work disk"}, {name: "vm.create:tap"}, {name: "vm.create:boot"},
			{name: "vm.create:wait for ssh", vmm: true}, {name: "vm.create:done", vmm: true, boots: true},
		}},
		{"start", preCreated, func(n string) []string { return []string{"vm", "start", n} }, []crashPoint{
			{name: "vm.start:tap"}, {name: "vm.start:boot"},
			{name: "vm.start:wait for ssh", vmm: true}, {name: "vm.start:done", vmm: true, boots: true},
		}},
		{"stop", preRunning, func(n string) []string { return []string{"vm", "stop", "--force", n} }, []crashPoint{
			{name: "vm.stop:halt", vmm: true}, {name: "vm.stop:release"}, {name: "vm.stop:record"}, {name: "vm.stop:done"},
		}},
		{"rm", preRunning, func(n string) []string { return []string{"vm", "rm", "--force", n} }, []crashPoint{
			{name: "vm.remove:teardown", vmm: true}, {name: "vm.remove:files"}, {name: "vm.remove:record"}, {name: "vm.remove:done"},
		}},
		{"set --nat", preRunning, func(n string) []string { return []string{"vm", "set", n, "--nat=false"} }, []crashPoint{
			{name: "vm.set:nat", vmm: true}, {name: "vm.set:record", vmm: true}, {name: "vm.set:done", vmm: true},
		}},
		{"set --disk", preCreated, func(n string) []string { return []string{"vm", "set", n, "--disk", "2G", "--memory", "768M"} }, []crashPoint{
			{name: "vm.set:grow"}, {name: "vm.set:record"}, {name: "vm.set:done"},
		}},
	}
}

// crashCell is one cell: a row's point, killing one target.
type crashCell struct {
	row    crashRow
	point  crashPoint
	target string
}

func (c crashCell) String() string { return c.row.verb + " " + c.point.name + " " + c.target }

// boots says whether the cell takes a guest boot: the verb needs one to
// reach its point, or carries on to one once the helper is gone (it
// needs no helper after its tap and NAT).
func (c crashCell) boots() bool {
	if c.point.boots {
		return true
	}
	booting := c.point.name == "vm.create:boot" || c.point.name == "vm.create:wait for ssh" ||
		c.point.name == "vm.start:boot" || c.point.name == "vm.start:wait for ssh"
	return c.target == "banger-helper" && booting
}

// cellResult is what one cell found.
type cellResult struct {
	cell     crashCell
	outcome  string   // the VM after the restart: gone, created, stopped, running, error
	problems []string // empty: clean
	took     time.Duration
}

// crashCells lists every cell that applies — the VMM column only where a
// VMM runs — those that boot a guest first, so the lanes share them out.
func crashCells(rows []crashRow) (cells []crashCell, notApplicable int) {
	var boot, rest []crashCell
	for _, r := range rows {
		for _, p := range r.points {
			for _, target := range crashTargets {
				c := crashCell{row: r, point: p, target: target}
				switch {
				case target == "vmm" && !p.vmm:
					notApplicable++
				case c.boots():
					boot = append(boot, c)
				default:
					rest = append(rest, c)
				}
			}
		}
	}
	return append(boot, rest...), notApplicable
}

// crashLanes is how many cells run at once, each lane in an environment
// of its own: two (the machines here have two cores), or
// BANGER_CRASH_LANES.
func crashLanes(t *testing.T) int {
	if v := os.Getenv("BANGER_CRASH_LANES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 8 {
			t.Fatalf("BANGER_CRASH_LANES=%q: want a number of lanes from 1 to 8", v)
		}
		return n
	}
	return 2
}

// TestCrashMatrix: for each of vm create, start, stop, rm and set, at
// each boundary, kill -9 in turn bangerd, banger-helper and the VMM;
// restart what was killed; then the VM must be in a state the user can
// act on (created, stopped, running and adopted, or error with the
// reason), `vm rm` must remove it, and no tap, NAT rule, loop or dm
// device, VMM process, socket, temporary file or disk may be left. The
// matrix is logged as a table with a summary line. The QEMU driver, on
// XFS so overlays are reflinks: what is tested is banger's recovery, not
// the copy or the driver (the driver's own crash cases run for both in
// vm_failures_test.go).
func TestCrashMatrix(t *testing.T) {
	rows := crashRows()
	cells, na := crashCells(rows)
	if only := os.Getenv("BANGER_CRASH_ONLY"); only != "" { // e.g. "stop vm.stop:halt"
		var some []crashCell
		for _, c := range cells {
			if strings.Contains(c.String(), only) {
				some = append(some, c)
			}
		}
		cells = some
	}
	queue := make(chan crashCell, len(cells))
	for _, c := range cells {
		queue <- c
	}
	close(queue)
	var (
		mu      sync.Mutex
		results []cellResult
	)
	start := time.Now()
	t.Run("lanes", func(t *testing.T) {
		for i := 0; i < crashLanes(t); i++ {
			t.Run(fmt.Sprint("lane", i), func(t *testing.T) {
				t.Parallel()
				l := newCrashLane(t)
				for c := range queue {
					var r cellResult
					t.Run(c.String(), func(t *testing.T) {
						r = l.run(t, c)
						mu.Lock()
						results = append(results, r)
						mu.Unlock()
						for _, p := range r.problems {
							t.Errorf("%s: %s", c, p)
						}
					})
					if len(r.problems) > 0 {
						l.fresh()
					}
				}
			})
		}
	})
	t.Log("\n" + crashTable(rows, results, na, time.Since(start)))
}

// crashTable renders the matrix: a row per verb and point, a column per
// target, each cell "clean → <what the VM ended as>", "LEFT <what>", or
// "—" where no VMM runs at that point.
func crashTable(rows []crashRow, results []cellResult, notApplicable int, took time.Duration) string {
	byCell := map[string]cellResult{}
	for _, r := range results {
		byCell[r.cell.String()] = r
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-11s %-24s", "verb", "point")
	for _, target := range crashTargets {
		fmt.Fprintf(&b, " %-22s", target)
	}
	b.WriteString("\n")
	clean := 0
	for _, row := range rows {
		for _, p := range row.points {
			fmt.Fprintf(&b, "%-11s %-24s", row.verb, p.name)
			for _, target := range crashTargets {
				r, ok := byCell[crashCell{row: row, point: p, target: target}.String()]
				cell := "—"
				switch {
				case ok && len(r.problems) == 0:
					clean++
					cell = "clean → " + r.outcome
				case ok:
					cell = "FAILED: " + r.problems[0]
				case target != "vmm" || p.vmm:
					cell = "not run"
				}
				if len(cell) > 22 {
					cell = cell[:21] + "…"
				}
				fmt.Fprintf(&b, " %-22s", cell)
			}
			b.WriteString("\n")
		}
	}
	fmt.Fprintf(&b, "crash matrix: %d cells run, %d clean, %d not applicable (no VMM at that point), in %s\n",
		len(results), clean, notApplicable, took.Round(time.Second))
	return b.String()
}

// TestFailpointMisarmed: a bangerd given a failpoint without its file
// (or a file without a point) refuses to start, saying what is missing,
// rather than running with a failpoint that could never pause.
func TestFailpointMisarmed(t *testing.T) {
	u := newUser(t, "")
	for _, tc := range []struct{ env, want string }{
		{failpoint.EnvPoint + "=vm.create:boot", `BANGER_FAILPOINT="vm.create:boot" is set but BANGER_FAILPOINT_FILE is not`},
		{failpoint.EnvFile + "=" + filepath.Join(t.TempDir(), "fp"), "BANGER_FAILPOINT_FILE is set but BANGER_FAILPOINT is not"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // a daemon that starts serves until killed
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(u.bin, "bangerd"))
		cmd.Env = append(slices.Clone(u.env), tc.env)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), tc.want) {
			t.Errorf("bangerd with %s: %v\n%s", tc.env, err, out)
		}
	}
}
