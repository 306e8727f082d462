package deptest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	// maxFileLines bounds every Go file: past it, a file holds more
	// than one thing and should be split by what it owns.
	maxFileLines = 500
	// maxFuncLines bounds every function outside tests (table-driven
	// tests may run longer).
	maxFuncLines = 80
	// sizeExempt, in the doc comment of a function or anywhere in a
	// file's first comment, exempts it, with the reason after it.
	sizeExempt = "size-rule: exempt"
)

// TestSizeRules: files under 500 lines, functions outside tests under
// 80, unless marked exempt with a reason.
func TestSizeRules(t *testing.T) {
	root := "../.."
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, path, src, parser.ParseComments)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		checkFile(t, fset, rel, f, src)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func checkFile(t *testing.T, fset *token.FileSet, rel string, f *ast.File, src []byte) {
	t.Helper()
	fileExempt := len(f.Comments) > 0 && strings.Contains(f.Comments[0].Text(), sizeExempt)
	if n := strings.Count(string(src), "\n"); n > maxFileLines && !fileExempt {
		t.Errorf("%s has %d lines; files stay under %d (split it by what it owns, or mark it %q with the reason)", rel, n, maxFileLines, sizeExempt)
	}
	if strings.HasSuffix(rel, "_test.go") {
		return
	}
	for _, decl := range f.Decls {
		fd, ok := decl.(*ast.FuncDecl)
		if !ok || fd.Body == nil || (fd.Doc != nil && strings.Contains(fd.Doc.Text(), sizeExempt)) {
			continue
		}
		n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1
		if n > maxFuncLines {
			t.Errorf("%s: func %s has %d lines; functions stay under %d (or say %q with the reason in its doc comment)", rel, fd.Name.Name, n, maxFuncLines, sizeExempt)
		}
	}
}
