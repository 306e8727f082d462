package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

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
