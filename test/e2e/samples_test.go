package e2e

import (
	"encoding/json"
	"os"
	"sort"
	"strings"
	"testing"
)

// samples are one benchmark's measurements, one per iteration, for what
// Go's harness cannot time itself (a span inside the run, a process's
// memory). report gives the median to the harness (benchstat reads it)
// and, when $BANGER_BENCH_SAMPLES names a file, appends every value
// there for the report's median and p90 (bench/cmd/benchreport).
type samples struct {
	b    *testing.B
	name string // the benchmark's, or a name of its own
	unit string
	v    []float64
}

func newSamples(b *testing.B, unit string) *samples {
	return &samples{b: b, name: b.Name(), unit: unit}
}

// newNamedSamples are samples reported under a name of their own, for a
// benchmark that measures several things in each iteration. The metric
// Go's harness gets is named after the last part of the name.
func newNamedSamples(b *testing.B, name, unit string) *samples {
	return &samples{b: b, name: name, unit: unit}
}

func (s *samples) add(v float64) { s.v = append(s.v, v) }

func (s *samples) report() {
	if len(s.v) == 0 {
		return
	}
	sorted := append([]float64(nil), s.v...)
	sort.Float64s(sorted)
	unit := s.unit
	if s.name != s.b.Name() {
		unit = s.name[strings.LastIndex(s.name, "/")+1:] + "-" + unit
	}
	s.b.ReportMetric(sorted[len(sorted)/2], unit)
	path := os.Getenv("BANGER_BENCH_SAMPLES")
	if path == "" {
		return
	}
	line, _ := json.Marshal(map[string]any{"benchmark": s.name, "unit": s.unit, "values": s.v})
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		s.b.Fatal(err)
	}
	defer f.Close()
	f.Write(append(line, '\n'))
}
