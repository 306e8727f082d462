package cli

import (
	"io"
	"strings"
	"text/tabwriter"
)

// table writes aligned columns for human output.
type table struct {
	w      *tabwriter.Writer
	indent string
}

// newTable is a table indented under a heading line.
func newTable(out io.Writer) *table {
	return &table{w: tabwriter.NewWriter(out, 0, 4, 2, ' ', 0), indent: "  "}
}

// newTableNoIndent is a table that starts at the left margin.
func newTableNoIndent(out io.Writer) *table {
	return &table{w: tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)}
}

func (t *table) row(cells ...string) {
	io.WriteString(t.w, t.indent+strings.Join(cells, "\t")+"\n")
}

func (t *table) flush() error { return t.w.Flush() }
