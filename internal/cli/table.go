package cli

import (
	"io"
	"strings"
	"text/tabwriter"
)

// table writes aligned columns for human output.
type table struct {
	w *tabwriter.Writer
}

func newTable(out io.Writer) *table {
	return &table{w: tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)}
}

func (t *table) row(cells ...string) {
	io.WriteString(t.w, "  "+strings.Join(cells, "\t")+"\n")
}

func (t *table) flush() error { return t.w.Flush() }
