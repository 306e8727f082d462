package main

import (
	"fmt"
	"sort"
	"strings"
)

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
