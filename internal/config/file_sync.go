package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"banger/internal/guestapi"
	"banger/internal/model"
)

// fileSyncTables checks that file_sync is an array of tables, written
// either as [[file_sync]] sections or as an inline array of inline
// tables, and returns its entries.
func (p *parser) fileSyncTables(v any) []map[string]any {
	switch v := v.(type) {
	case nil:
		return nil
	case []map[string]any:
		return v
	case []any:
		tables := make([]map[string]any, 0, len(v))
		for i, elem := range v {
			t, ok := elem.(map[string]any)
			if !ok {
				p.fail(fmt.Sprintf("file_sync[%d]", i), fmt.Errorf("expected a table, got %s", describe(elem)))
				continue
			}
			tables = append(tables, t)
		}
		return tables
	default:
		p.fail("file_sync", fmt.Errorf("expected an array of tables (one [[file_sync]] section per entry), got %s", describe(v)))
		return nil
	}
}

// fileSync validates each entry's host, guest and mode.
func (p *parser) fileSync(tables []map[string]any) []model.FileSyncEntry {
	var entries []model.FileSyncEntry
	for i, t := range tables {
		key := func(name string) string { return fmt.Sprintf("file_sync[%d].%s", i, name) }
		var e model.FileSyncEntry
		ok := true
		for _, f := range []struct {
			name     string
			required bool
			dst      *string
			check    func(string) (string, error)
		}{
			{"host", true, &e.Host, parseSyncHost},
			{"guest", true, &e.Guest, parseSyncGuest},
			{"mode", false, &e.Mode, parseSyncMode},
		} {
			v, present := t[f.name]
			if !present {
				if f.required {
					p.fail(key(f.name), errors.New("is required"))
					ok = false
				}
				continue
			}
			if _, isInt := v.(int64); isInt && f.name == "mode" {
				// mode = 644 is decimal 644, not rw-r--r--.
				p.fail(key(f.name), fmt.Errorf(`expected an octal string such as "0644", got %s`, describe(v)))
				ok = false
				continue
			}
			if err := stringField(f.dst, f.check)(v); err != nil {
				p.fail(key(f.name), err)
				ok = false
			}
		}
		if ok {
			entries = append(entries, e)
		}
	}
	return entries
}

// parseSyncHost accepts "~/..." (kept as written: the daemon expands it
// against HostHomeDir at VM create time) or an absolute path. A "~/"
// path must stay inside the home lexically and must not be the home
// itself, which would copy every secret in it into the VM.
func parseSyncHost(s string) (string, error) {
	if err := checkPathString(s); err != nil {
		return "", err
	}
	switch {
	case strings.HasPrefix(s, "~/"):
		rel := filepath.Clean(strings.TrimLeft(s[2:], "/"))
		if rel == "." {
			return "", fmt.Errorf("%q is the whole home directory; name a file or directory inside it", s)
		}
		if rel == ".." || strings.HasPrefix(rel, "../") {
			return "", fmt.Errorf("%q leaves the home directory", s)
		}
	case filepath.IsAbs(s):
	default:
		return "", fmt.Errorf("%q must be an absolute path or start with ~/", s)
	}
	return s, nil
}

// parseSyncGuest is guestapi.GuestPath: "~/..." or an absolute path,
// returned as a clean absolute path strictly inside /root.
func parseSyncGuest(s string) (string, error) {
	return guestapi.GuestPath(s)
}

// parseSyncMode accepts permission bits in octal, with or without the
// leading 0 ("0600", "600"). It is kept as written.
func parseSyncMode(s string) (string, error) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o777 {
		return "", fmt.Errorf(`%q is not an octal file mode between 0 and 0777 (such as "0600")`, s)
	}
	return s, nil
}
