package config

import (
	"errors"
	"fmt"
	"strconv"

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

// fileSync validates each entry's host, guest and mode. home is the
// configured host_home_dir, the only place hosts may name.
func (p *parser) fileSync(tables []map[string]any, home string) []model.FileSyncEntry {
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
			{"host", true, &e.Host, func(s string) (string, error) { return parseSyncHost(s, home) }},
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

// parseSyncHost is model.SyncHostPath: "~/..." or an absolute path,
// strictly inside home once cleaned; "/etc/passwd" and "~/../x" are
// refused here, before any VM is made. It is kept as written: the work
// disk build expands it again, and then resolves its symlinks, which
// must lead inside the home too.
func parseSyncHost(s, home string) (string, error) {
	if _, err := model.SyncHostPath(s, home); err != nil {
		return "", err
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
