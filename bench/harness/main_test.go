package main

import (
	"strings"
	"testing"
)

func TestParseLine(t *testing.T) {
	v := values{}
	parseLine("BenchmarkControlPlaneStart/firecracker/banger-2  	       5	14503892659 ns/op	        30.83 ms-to-InstanceStart", v)
	parseLine("BenchmarkCall-2   	   15873	     75123 ns/op	    4242 B/op	      61 allocs/op", v)
	parseLine("BenchmarkCall-2   	   15000	     76123 ns/op	    4242 B/op	      61 allocs/op", v)
	parseLine("--- FAIL: BenchmarkX", v)
	if got := v[metric{"BenchmarkControlPlaneStart/firecracker/banger", "ms-to-InstanceStart"}]; len(got) != 1 || got[0] != 30.83 {
		t.Errorf("custom metric: %v", got)
	}
	if got := v[metric{"BenchmarkCall", "ns/op"}]; len(got) != 2 || got[1] != 76123 {
		t.Errorf("ns/op over two runs: %v", got)
	}
	if len(v) != 5 {
		t.Errorf("metrics: %v", v)
	}
}

func TestEvaluate(t *testing.T) {
	v := values{
		{"B/banger", "ms"}: {10, 12, 11, 30, 11},
		{"B/raw", "ms"}:    {10, 10, 10, 10, 10},
	}
	r := evaluate(row{Title: "t", Banger: metric{"B/banger", "ms"}, Raw: metric{"B/raw", "ms"}, Unit: "ms", MaxRatio: 1.25, MaxAbs: 50}, v)
	if r.Banger.Median != 11 || r.Banger.P90 != 30 || r.Banger.N != 5 || r.Ratio != 1.1 || r.Met == nil || !*r.Met {
		t.Errorf("met row: %+v %+v", r, r.Banger)
	}
	r = evaluate(row{Title: "t", Banger: metric{"B/banger", "ms"}, Raw: metric{"B/raw", "ms"}, Unit: "ms", MaxRatio: 1.05, Why: "because"}, v)
	if r.Met == nil || *r.Met || r.Why != "because" {
		t.Errorf("missed row: %+v", r)
	}
	r = evaluate(row{Title: "t", Banger: metric{"C/banger", "ms"}, Unit: "ms", MaxAbs: 1}, v)
	if r.Measured || r.Met != nil {
		t.Errorf("unmeasured row: %+v", r)
	}
	table := markdownTable(Report{Rows: []Result{r}})
	if !strings.Contains(table, "not measured") {
		t.Errorf("table:\n%s", table)
	}
}
