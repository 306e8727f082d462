package e2e

import (
	"encoding/json"
	"os"
	"sort"
	"testing"
)

// samples are one benchmark's measurements, one per iteration, for what
// Go's harness cannot time itself (a span inside the run, a process's
// memory). report gives the median to the harness (benchstat reads it)
// and, when $BANGER_BENCH_SAMPLES names a file, appends every value
// there for the report's median and p90 (bench/cmd/benchreport).
type samples struct {
	b    *testing.B
	unit string
	v    []float64
}

func newSamples(b *testing.B, unit string) *samples { return &samples{b: b, unit: unit} }

func (s *samples) add(v float64) { s.v = append(s.v, v) }

func (s *samples) report() {
	if len(s.v) == 0 {
		return
	}
	sorted := append([]float64(nil), s.v...)
	sort.Float64s(sorted)
	s.b.ReportMetric(sorted[len(sorted)/2], s.unit)
	path := os.Getenv("BANGER_BENCH_SAMPLES")
	if path == "" {
		return
	}
	line, _ := json.Marshal(map[string]any{"benchmark": s.b.Name(), "unit": s.unit, "values": s.v})
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		s.b.Fatal(err)
	}
	defer f.Close()
	f.Write(append(line, '\n'))
}
