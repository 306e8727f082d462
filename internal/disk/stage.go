package disk

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"banger/internal/guestapi"
)

// stage is the private directory a work disk's tree is assembled in
// before mkfs.ext4 -d copies it into the image. Paths in it are named
// relative to its top, which becomes /root in the guest, with slashes.
//
// Nothing but this process writes in it (it is made 0700), so the
// checks below are not racing anyone; what they guard against is a
// symlink from the seed, or an earlier entry, being followed out of the
// tree on the host. Directories stay 0700 while the tree is assembled,
// so it can be written and removed whatever modes they end with; their
// final modes are recorded and applied by finish.
type stage struct {
	dir      string
	dirModes map[string]uint32
}

func newStage(parent string) (*stage, error) {
	dir, err := os.MkdirTemp(parent, ".work-stage-*")
	if err != nil {
		return nil, err
	}
	return &stage{dir: dir, dirModes: map[string]uint32{}}, nil
}

// hostPath is where rel is on the host.
func (s *stage) hostPath(rel string) string {
	return filepath.Join(s.dir, filepath.FromSlash(rel))
}

// guestPath is what rel is called in the guest, for messages.
func guestPath(rel string) string {
	return path.Join(guestapi.WorkMountPoint, rel)
}

// mkdirParents makes every missing directory above rel with mode m. A
// file or symlink in the way is an error, unless replace is set, when it
// is removed.
func (s *stage) mkdirParents(rel string, m uint32, replace bool) error {
	parent := path.Dir(rel)
	if parent == "." {
		return nil
	}
	cur := ""
	for _, part := range strings.Split(parent, "/") {
		cur = path.Join(cur, part)
		if err := s.ensureDir(cur, m, false, replace); err != nil {
			return err
		}
	}
	return nil
}

// mkdir makes rel a directory that ends with mode m; one that exists
// already (from the seed or an earlier entry) is kept, and gets m.
func (s *stage) mkdir(rel string, m uint32) error {
	if err := s.mkdirParents(rel, 0o755, false); err != nil {
		return err
	}
	return s.ensureDir(rel, m, true, false)
}

func (s *stage) ensureDir(rel string, m uint32, setMode, replace bool) error {
	p := s.hostPath(rel)
	fi, err := os.Lstat(p)
	switch {
	case err == nil && fi.IsDir():
		if setMode {
			s.dirModes[rel] = m
		}
		return nil
	case err == nil && replace:
		if err := os.Remove(p); err != nil {
			return err
		}
	case err == nil:
		return fmt.Errorf("%s is %s on the work disk, not a directory", guestPath(rel), kindOf(fi.Mode()))
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if err := os.Mkdir(p, 0o700); err != nil {
		return err
	}
	s.dirModes[rel] = m
	return nil
}

// writeFile makes rel a regular file with mode m holding what r reads,
// replacing a file or symlink there (a later writer wins). A directory
// there is an error, unless replace is set, when it goes with all it
// holds. Missing parents are made with mode parentMode.
func (s *stage) writeFile(rel string, r io.Reader, m, parentMode uint32, replace bool) (int64, error) {
	if err := s.mkdirParents(rel, parentMode, replace); err != nil {
		return 0, err
	}
	if err := s.clear(rel, "a file", replace); err != nil {
		return 0, err
	}
	f, err := os.OpenFile(s.hostPath(rel), os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return 0, err
	}
	// Fchmod, not the open's mode, so the umask does not apply.
	if err := unix.Fchmod(int(f.Fd()), m); err != nil {
		f.Close()
		return 0, fmt.Errorf("chmod %s: %w", guestPath(rel), err)
	}
	n, err := io.Copy(f, r)
	if err != nil {
		f.Close()
		return n, fmt.Errorf("write %s: %w", guestPath(rel), err)
	}
	return n, f.Close()
}

// symlink makes rel a symlink to target, replacing a file or symlink.
func (s *stage) symlink(rel, target string) error {
	if err := s.mkdirParents(rel, 0o755, false); err != nil {
		return err
	}
	if err := s.clear(rel, "a symlink", false); err != nil {
		return err
	}
	return os.Symlink(target, s.hostPath(rel))
}

// clear removes what is at rel so that what is named by what can take
// its place: a file or a symlink always, a directory only with replace.
func (s *stage) clear(rel, what string, replace bool) error {
	p := s.hostPath(rel)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		if !replace {
			return fmt.Errorf("%s is a directory on the work disk; %s cannot replace it", guestPath(rel), what)
		}
		for d := range s.dirModes {
			if d == rel || strings.HasPrefix(d, rel+"/") {
				delete(s.dirModes, d)
			}
		}
		return os.RemoveAll(p)
	}
	return os.Remove(p)
}

// finish gives every directory its final mode, deepest first, so that a
// directory without search permission is changed after what is in it.
func (s *stage) finish() error {
	dirs := make([]string, 0, len(s.dirModes))
	for d := range s.dirModes {
		dirs = append(dirs, d)
	}
	sort.Slice(dirs, func(i, j int) bool {
		di, dj := strings.Count(dirs[i], "/"), strings.Count(dirs[j], "/")
		if di != dj {
			return di > dj
		}
		return dirs[i] < dirs[j]
	})
	for _, d := range dirs {
		if err := unix.Chmod(s.hostPath(d), s.dirModes[d]); err != nil {
			return fmt.Errorf("chmod %s: %w", guestPath(d), err)
		}
	}
	return nil
}

// remove deletes the stage. Directories finish made unwritable or
// unsearchable are opened up first, which RemoveAll cannot do for an
// unprivileged daemon.
func (s *stage) remove() error {
	if err := os.RemoveAll(s.dir); err == nil {
		return nil
	}
	filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(s.dir)
}

// kindOf names a file type for messages: "a socket", "a directory".
func kindOf(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m.IsRegular():
		return "a regular file"
	case m&fs.ModeSymlink != 0:
		return "a symlink"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "an unsupported file type"
}
