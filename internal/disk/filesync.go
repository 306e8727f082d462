package disk

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"banger/internal/guestapi"
	"banger/internal/model"
)

// File sync (model.FileSyncEntry), as BuildWorkDisk applies it. Every
// error and warning starts with the entry: "file_sync[i] (host → guest)".
//
//   - Host "~/x" is x in the home, and an absolute host path must name
//     something inside the home too (model.SyncHostPath has the rules:
//     "/etc/passwd", "~/../x" and relative paths are errors). Once every
//     symlink is resolved (the entry's own and, in a directory, each one
//     inside) it must still be in the home, or the entry is an error and
//     the create fails. Symlinks are followed: the guest gets what they
//     point to, never a link to a host path.
//   - A missing host path, a symlink to nothing, a socket, FIFO or
//     device are warnings: skipped, and the create goes on.
//   - Guest "~/x" or "/root/x" is x on the work disk; anything else, or
//     /root itself, is an error (guestapi.GuestPath has the rules).
//     Missing parents are made 0755.
//   - Mode applies to the entry itself; otherwise, and for everything
//     inside a directory, files get 0600 (0700 if any execute bit is set
//     on the host) and directories 0755. setuid, setgid and sticky are
//     never set.
//   - Entries apply in order, a later one replacing an earlier one's
//     files; the daemon's Files are written after all of them.
//   - An entry that would take the total copied past the work disk's
//     size is an error before anything of it is copied.

// Modes file sync gives what an entry's Mode does not cover.
const (
	syncFileMode = 0o600 // a file
	syncExecMode = 0o700 // a file some execute bit is set on
	syncDirMode  = 0o755 // a directory, and every parent file sync makes
)

// syncEntry is one file_sync entry being planned: everything that is
// known about it before anything is copied.
type syncEntry struct {
	label string // file_sync[i] (host → guest), the prefix of its errors and warnings

	// bound is the resolved home, which every symlink in the entry must
	// stay in. root opens sources through bound, so that a symlink
	// swapped in after the check cannot lead out of it either.
	bound string
	root  *os.Root

	ops      []syncOp
	warnings []string
	// budget is what may still be copied before the work disk is full;
	// planning stops as soon as the entry goes over it.
	budget   int64
	diskSize int64
	// ancestors are the resolved directories being walked, outermost
	// first: a symlink to one of them would be a loop.
	ancestors []string
}

// syncOp is one directory to make or one file to copy.
type syncOp struct {
	dir  bool
	src  string // the resolved host path
	dst  string // in the stage
	mode uint32
}

func (e *syncEntry) errorf(format string, args ...any) error {
	return fmt.Errorf(e.label+": "+format, args...)
}

func (e *syncEntry) warnf(format string, args ...any) {
	e.warnings = append(e.warnings, fmt.Sprintf(e.label+": "+format, args...))
}

// syncLabel names entry i of the config in every message about it.
func syncLabel(i int, e model.FileSyncEntry) string {
	return fmt.Sprintf("file_sync[%d] (%s → %s)", i, e.Host, e.Guest)
}

// planSync checks entry i and lists what it copies, without copying
// anything: so an entry that fails (a symlink leading out of the home, a
// guest path outside /root, more than the disk holds) copies nothing.
// budget is how many of the disk's diskSize bytes may still go on it.
// The caller closes the returned entry's root.
func planSync(i int, se model.FileSyncEntry, home string, budget, diskSize int64) (*syncEntry, error) {
	e := &syncEntry{label: syncLabel(i, se), budget: budget, diskSize: diskSize}
	mode, explicit, err := parseSyncMode(se.Mode)
	if err != nil {
		return nil, e.errorf("%w", err)
	}
	dst, err := guestRel(se.Guest)
	if err != nil {
		return nil, e.errorf("%w", err)
	}
	host, err := model.SyncHostPath(se.Host, home)
	if err != nil {
		return nil, e.errorf("%w", err)
	}
	if _, err := os.Lstat(host); errors.Is(err, fs.ErrNotExist) {
		e.warnf("%s does not exist on the host; skipped", host)
		return e, nil
	} else if err != nil {
		return nil, e.errorf("%w", err)
	}
	real, err := filepath.EvalSymlinks(host)
	if errors.Is(err, fs.ErrNotExist) {
		e.warnf("%s is a symlink to nothing; skipped", host)
		return e, nil
	} else if err != nil {
		return nil, e.errorf("resolve %s: %w", host, err)
	}
	homeReal, err := filepath.EvalSymlinks(home)
	if err != nil {
		return nil, e.errorf("home directory: %w", err)
	}
	if !within(real, homeReal) {
		return nil, e.errorf("%s resolves to %s, outside the home directory %s; refusing to copy it", host, real, homeReal)
	}
	if real == homeReal {
		return nil, e.errorf("%s resolves to the home directory itself; refusing to copy all of it", host)
	}
	e.bound = homeReal
	fi, err := os.Stat(real)
	if err != nil {
		return nil, e.errorf("%w", err)
	}
	switch {
	case fi.IsDir():
		if !explicit {
			mode = syncDirMode
		}
		err = e.openRoot(func() error { return e.walkDir(real, dst, mode) })
	case fi.Mode().IsRegular():
		if !explicit {
			mode = fileMode(fi.Mode())
		}
		err = e.openRoot(func() error { return e.addFile(real, dst, mode, fi.Size()) })
	default:
		e.warnf("%s is %s; skipped", host, kindOf(fi.Mode()))
	}
	if err != nil {
		return nil, err
	}
	return e, nil
}

// openRoot opens the entry's root at its bound, then runs plan; if plan
// fails, the root is closed again.
func (e *syncEntry) openRoot(plan func() error) error {
	var err error
	if e.root, err = os.OpenRoot(e.bound); err != nil {
		return e.errorf("%w", err)
	}
	if err := plan(); err != nil {
		e.root.Close()
		e.root = nil
		return err
	}
	return nil
}

// walkDir plans the copy of the resolved directory dir to dst, with the
// directory itself made with mode and what is in it with the defaults.
func (e *syncEntry) walkDir(dir, dst string, mode uint32) error {
	e.ops = append(e.ops, syncOp{dir: true, src: dir, dst: dst, mode: mode})
	e.ancestors = append(e.ancestors, dir)
	defer func() { e.ancestors = e.ancestors[:len(e.ancestors)-1] }()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return e.errorf("%w", err)
	}
	for _, d := range entries {
		if err := e.walk(filepath.Join(dir, d.Name()), path.Join(dst, d.Name())); err != nil {
			return err
		}
	}
	return nil
}

// walk plans the copy of host, found inside a synced directory, to dst.
// A symlink is followed, and must lead inside the entry's bound.
func (e *syncEntry) walk(host, dst string) error {
	fi, err := os.Lstat(host)
	if err != nil {
		return e.errorf("%w", err)
	}
	real := host
	if fi.Mode()&fs.ModeSymlink != 0 {
		real, err = filepath.EvalSymlinks(host)
		if errors.Is(err, fs.ErrNotExist) {
			e.warnf("%s is a symlink to nothing; skipped", host)
			return nil
		}
		if err != nil {
			return e.errorf("resolve %s: %w", host, err)
		}
		if !within(real, e.bound) {
			return e.errorf("symlink %s leads to %s, outside %s; refusing to copy the entry", host, real, e.bound)
		}
		if fi, err = os.Stat(real); err != nil {
			return e.errorf("%w", err)
		}
		if fi.IsDir() && slices.ContainsFunc(e.ancestors, func(a string) bool { return within(a, real) }) {
			return e.errorf("symlink %s leads to %s, which contains it: a loop", host, real)
		}
	}
	switch {
	case fi.IsDir():
		return e.walkDir(real, dst, syncDirMode)
	case fi.Mode().IsRegular():
		return e.addFile(real, dst, fileMode(fi.Mode()), fi.Size())
	default:
		e.warnf("%s is %s; skipped", host, kindOf(fi.Mode()))
		return nil
	}
}

func (e *syncEntry) addFile(src, dst string, mode uint32, size int64) error {
	e.budget -= size
	if e.budget < 0 {
		return e.errorf("it copies more than the %s work disk holds (counting the seed and the entries before it); sync less, or ask for a bigger work disk", model.FormatSizeBytes(e.diskSize))
	}
	e.ops = append(e.ops, syncOp{src: src, dst: dst, mode: mode})
	return nil
}

// apply copies what planSync listed into the stage, in order, and
// returns the bytes copied.
func (e *syncEntry) apply(s *stage) (int64, error) {
	var total int64
	for _, op := range e.ops {
		if op.dir {
			if err := s.mkdir(op.dst, op.mode); err != nil {
				return total, e.errorf("%w", err)
			}
			continue
		}
		n, err := e.copyFile(s, op)
		total += n
		if err != nil {
			return total, e.errorf("%w", err)
		}
	}
	return total, nil
}

func (e *syncEntry) copyFile(s *stage, op syncOp) (int64, error) {
	// O_NONBLOCK: a file swapped for a FIFO since planning must not hang
	// the create; it is refused below instead.
	flags := os.O_RDONLY | unix.O_NONBLOCK
	rel, err := filepath.Rel(e.bound, op.src)
	if err != nil {
		return 0, err
	}
	f, err := e.root.OpenFile(rel, flags, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return 0, err
	} else if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("%s changed while it was copied: it is now %s", op.src, kindOf(fi.Mode()))
	}
	return s.writeFile(op.dst, f, op.mode, syncDirMode, false)
}

// parseSyncMode reads an entry's Mode: octal permission bits, "0640" or
// "640". An empty Mode means the defaults.
func parseSyncMode(s string) (mode uint32, explicit bool, err error) {
	if s == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(s, "0o"), 8, 32)
	if err != nil {
		return 0, false, fmt.Errorf("mode %q is not an octal file mode such as \"0600\"", s)
	}
	if n > 0o777 {
		return 0, false, fmt.Errorf("mode %q has bits beyond 0777: setuid, setgid and sticky are never set by file sync", s)
	}
	return uint32(n), true, nil
}

// fileMode is the default mode of a synced file whose host mode is m.
func fileMode(m fs.FileMode) uint32 {
	if m&0o111 != 0 {
		return syncExecMode
	}
	return syncFileMode
}

// guestRel maps a guest path, "~/x" or "/root/x", to its path in the
// stage, x: guestapi.GuestPath's rules, which refuse whatever resolves
// outside /root, and /root itself.
func guestRel(guest string) (string, error) {
	clean, err := guestapi.GuestPath(guest)
	if err != nil {
		return "", err
	}
	return strings.TrimPrefix(clean, guestapi.GuestHome+"/"), nil
}

// within reports whether the clean absolute path p is dir or inside it.
func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}
