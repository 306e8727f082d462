package gitrepo

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// A bundle's header is read here, not by git, so that a hostile guest's
// header is bounded before git sees it: a bundle is "# v2 git bundle"
// (or v3, whose "@" lines name capabilities), then one "-<id> comment"
// line per prerequisite and one "<id> <ref>" line per ref, then an
// empty line, then the pack.
const (
	// bundleMaxHeader bounds the header; a workspace's bundle has one
	// ref and a few prerequisites, a few hundred bytes.
	bundleMaxHeader = 64 << 10
	// bundleMaxLines bounds its refs, prerequisites and capabilities.
	bundleMaxLines = 1000
	// bundleRefsNamed is how many of a bundle's refs an error names.
	bundleRefsNamed = 5
)

// bundleHeader is what Import takes from a bundle's header.
type bundleHeader struct {
	Tip  string   // the id refs/heads/<branch> points to
	Refs []string // the first few refs it carries, for an error
}

// bundleReadHeader reads the header of a bundle from r and finds ref
// (refs/heads/<branch>) in it. hexLen is the host repository's object
// id length (40 for SHA-1, 64 for SHA-256); format its name.
func bundleReadHeader(r io.Reader, ref string, hexLen int, format string) (bundleHeader, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, bundleMaxHeader), 4096)
	var h bundleHeader
	first, err := bundleLine(br)
	if err != nil {
		return h, fmt.Errorf("the guest's file is not a git bundle: %w", err)
	}
	var v3 bool
	switch first {
	case "# v2 git bundle":
	case "# v3 git bundle":
		v3 = true
	default:
		return h, fmt.Errorf("the guest's file is not a git bundle (it starts %q)", bundleShort(first))
	}
	found := false
	for n := 0; ; n++ {
		line, err := bundleLine(br)
		if err != nil {
			return h, fmt.Errorf("the guest's bundle header: %w", err)
		}
		if line == "" {
			break
		}
		if n >= bundleMaxLines {
			return h, fmt.Errorf("the guest's bundle header has more than %d lines; banger reads one branch", bundleMaxLines)
		}
		switch {
		case line[0] == '@':
			if err := bundleCapability(line[1:], v3, format); err != nil {
				return h, err
			}
		case line[0] == '-':
			if !bundleIsID(bundleFirstField(line[1:]), hexLen) {
				return h, fmt.Errorf("the guest's bundle has a malformed prerequisite line %q", bundleShort(line))
			}
		default:
			id, name, ok := strings.Cut(line, " ")
			if !ok || !bundleIsID(id, hexLen) || name == "" {
				return h, fmt.Errorf("the guest's bundle has a malformed ref line %q (a %s id and a ref name)", bundleShort(line), format)
			}
			if name != ref {
				if len(h.Refs) < bundleRefsNamed {
					h.Refs = append(h.Refs, name)
				}
				continue
			}
			if found {
				return h, fmt.Errorf("the guest's bundle names %s twice", ref)
			}
			if strings.Trim(id, "0") == "" {
				return h, fmt.Errorf("the guest's bundle gives %s the null id", ref)
			}
			h.Tip, found = id, true
		}
	}
	if !found {
		b := strings.TrimPrefix(ref, "refs/heads/")
		return h, fmt.Errorf("the guest's bundle has no branch %s: was it deleted or renamed in the guest?%s", b, bundleListRefs(h.Refs))
	}
	return h, nil
}

// bundleLine reads one header line without its newline.
func bundleLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return "", errors.New("a line is longer than 4 KiB")
	case errors.Is(err, io.EOF):
		return "", fmt.Errorf("the file ends before the header does (or the header is over %d KiB)", bundleMaxHeader>>10)
	case err != nil:
		return "", err
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	if bytes.IndexByte(line, 0) >= 0 {
		return "", errors.New("a header line holds a NUL byte")
	}
	return string(line), nil
}

// bundleCapability accepts a v3 bundle's capability if it changes
// nothing banger relies on: the object format must be the host's, and a
// filtered bundle (objects left out) is refused.
func bundleCapability(c string, v3 bool, format string) error {
	if !v3 {
		return fmt.Errorf("the guest's v2 bundle has a capability line %q (only v3 bundles have them)", bundleShort(c))
	}
	key, value, _ := strings.Cut(c, "=")
	switch key {
	case "object-format":
		if value != format {
			return fmt.Errorf("the guest's bundle holds %s objects but the host repository uses %s", bundleShort(value), format)
		}
		return nil
	case "filter":
		return errors.New("the guest's bundle is filtered (some objects were left out); make a full bundle of the branch")
	}
	return fmt.Errorf("the guest's bundle needs capability %q, which banger does not accept", bundleShort(key))
}

// bundleIsID says whether s is a full object id in lowercase hex.
func bundleIsID(s string, hexLen int) bool {
	if len(s) != hexLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func bundleFirstField(s string) string {
	id, _, _ := strings.Cut(s, " ")
	return id
}

// bundleShort quotes at most 80 bytes of what a guest wrote.
func bundleShort(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

func bundleListRefs(refs []string) string {
	if len(refs) == 0 {
		return " (it carries no ref at all)"
	}
	q := make([]string, len(refs))
	for i, r := range refs {
		q[i] = fmt.Sprintf("%q", bundleShort(r))
	}
	return " (it carries " + strings.Join(q, ", ") + ")"
}
