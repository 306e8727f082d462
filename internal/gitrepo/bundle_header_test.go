package gitrepo

import (
	"bytes"
	"strings"
	"testing"
)

const bundleWant = "refs/heads/banger/vm1"

var (
	bundleTip = strings.Repeat("1a", 20)
	bundlePre = strings.Repeat("2b", 20)
)

// TestBundleHeader: the header reader finds the one ref asked for and
// refuses every header it should not trust, each with its reason.
func TestBundleHeader(t *testing.T) {
	ref := bundleTip + " " + bundleWant + "\n"
	for _, c := range []struct {
		name, header string
		want         string // the error says it; "" means accepted
	}{
		{"v2", "# v2 git bundle\n-" + bundlePre + " base\n" + ref + "\nPACK", ""},
		{"v3 sha1", "# v3 git bundle\n@object-format=sha1\n" + ref + "\nPACK", ""},
		{"other refs too", "# v2 git bundle\n" + bundlePre + " refs/heads/main\n" + ref + "\n", ""},
		{"prerequisite without comment", "# v2 git bundle\n-" + bundlePre + "\n" + ref + "\n", ""},
		{"empty", "", "not a git bundle"},
		{"garbage", "hello\n\n", `it starts "hello"`},
		{"v4", "# v4 git bundle\n" + ref + "\n", "not a git bundle"},
		{"no ref", "# v2 git bundle\n\n", "has no branch banger/vm1: was it deleted or renamed in the guest? (it carries no ref at all)"},
		{"only main", "# v2 git bundle\n" + bundlePre + " refs/heads/main\n\n", `has no branch banger/vm1: was it deleted or renamed in the guest? (it carries "refs/heads/main")`},
		{"prefix of the ref", "# v2 git bundle\n" + bundleTip + " refs/heads/banger/vm\n\n", "has no branch banger/vm1"},
		{"ref twice", "# v2 git bundle\n" + ref + ref + "\n", "names refs/heads/banger/vm1 twice"},
		{"null id", "# v2 git bundle\n" + strings.Repeat("0", 40) + " " + bundleWant + "\n\n", "the null id"},
		{"short id", "# v2 git bundle\n" + bundleTip[:39] + " " + bundleWant + "\n\n", "malformed ref line"},
		{"upper case id", "# v2 git bundle\n" + strings.ToUpper(bundleTip) + " " + bundleWant + "\n\n", "malformed ref line"},
		{"sha256 id", "# v2 git bundle\n" + strings.Repeat("a", 64) + " " + bundleWant + "\n\n", "malformed ref line"},
		{"no name", "# v2 git bundle\n" + bundleTip + "\n\n", "malformed ref line"},
		{"bad prerequisite", "# v2 git bundle\n-xyz\n" + ref + "\n", "malformed prerequisite"},
		{"capability in v2", "# v2 git bundle\n@object-format=sha1\n" + ref + "\n", "only v3 bundles have them"},
		{"sha256 format", "# v3 git bundle\n@object-format=sha256\n" + ref + "\n", "holds sha256 objects"},
		{"filter", "# v3 git bundle\n@filter=blob:none\n" + ref + "\n", "is filtered"},
		{"unknown capability", "# v3 git bundle\n@frobnicate\n" + ref + "\n", `needs capability "frobnicate"`},
		{"no end", "# v2 git bundle\n" + ref, "the file ends before the header does"},
		{"no newline", "# v2 git bundle", "not a git bundle"},
		{"NUL", "# v2 git bundle\n" + bundleTip + " refs/heads/banger/vm1\x00x\n\n", "NUL byte"},
		{"long line", "# v2 git bundle\n" + bundleTip + " refs/heads/" + strings.Repeat("x", 5000) + "\n" + ref + "\n", "longer than 4 KiB"},
		{"many lines", "# v2 git bundle\n" + strings.Repeat("-"+bundlePre+"\n", bundleMaxLines) + ref + "\n", "more than 1000 lines"},
		{"most lines", "# v2 git bundle\n" + strings.Repeat("-"+bundlePre+"\n", bundleMaxLines-1) + ref + "\n", ""},
		{"huge header", "# v2 git bundle\n" + strings.Repeat("-"+bundlePre+" "+strings.Repeat("c", 3000)+"\n", 30) + ref + "\n", "over 64 KiB"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, err := bundleReadHeader(strings.NewReader(c.header), bundleWant, 40, "sha1")
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want == "" && h.Tip != bundleTip:
				t.Fatalf("tip %q; want %s", h.Tip, bundleTip)
			case c.want != "" && err == nil:
				t.Fatalf("accepted, tip %q", h.Tip)
			case c.want != "" && !strings.Contains(err.Error(), c.want):
				t.Fatalf("error %q; want it to say %q", err, c.want)
			}
		})
	}
}

// TestBundleHeaderSHA256: a SHA-256 host takes 64-digit ids.
func TestBundleHeaderSHA256(t *testing.T) {
	tip := strings.Repeat("c", 64)
	h, err := bundleReadHeader(strings.NewReader("# v3 git bundle\n@object-format=sha256\n"+tip+" "+bundleWant+"\n\n"), bundleWant, 64, "sha256")
	if err != nil || h.Tip != tip {
		t.Fatalf("got %+v, %v", h, err)
	}
	if _, err := bundleReadHeader(strings.NewReader("# v2 git bundle\n"+bundleTip+" "+bundleWant+"\n\n"), bundleWant, 64, "sha256"); err == nil {
		t.Fatal("a 40-digit id accepted for a SHA-256 repository")
	}
}

// FuzzBundleHeader: no header makes the reader panic, read past its
// bound, or accept a tip that is not a full lowercase hex id.
func FuzzBundleHeader(f *testing.F) {
	f.Add([]byte("# v2 git bundle\n-" + bundlePre + " base\n" + bundleTip + " " + bundleWant + "\n\nPACK"))
	f.Add([]byte("# v3 git bundle\n@object-format=sha1\n@filter=blob:none\n" + bundleTip + " " + bundleWant + "\n\n"))
	f.Add([]byte("# v2 git bundle\n" + bundleTip + " refs/heads/main\n\n"))
	f.Add([]byte("# v3 git bundle\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := &bundleCountingReader{r: bytes.NewReader(b)}
		h, err := bundleReadHeader(r, bundleWant, 40, "sha1")
		if r.n > bundleMaxHeader {
			t.Fatalf("read %d bytes, over the %d bound", r.n, bundleMaxHeader)
		}
		if err == nil && (!bundleIsID(h.Tip, 40) || strings.Trim(h.Tip, "0") == "") {
			t.Fatalf("accepted tip %q", h.Tip)
		}
		if err == nil && !bytes.Contains(b, []byte(h.Tip+" "+bundleWant+"\n")) {
			t.Fatalf("tip %q is not on a line of the header", h.Tip)
		}
		if len(h.Refs) > bundleRefsNamed {
			t.Fatalf("%d refs kept", len(h.Refs))
		}
	})
}

type bundleCountingReader struct {
	r interface{ Read([]byte) (int, error) }
	n int
}

func (c *bundleCountingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
