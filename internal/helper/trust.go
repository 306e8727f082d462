package helper

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The helper runs as root and acts on what its config says, listens where
// its flags say and runs whatever binary its unit names. Each of those
// is only as trustworthy as the least trusted user who can change it:
// whoever can write a directory on the way to it can rename an entry and
// put their own in its place. So the helper starts only when each path,
// and every directory above it up to /, can be changed by root alone.
//
// "Root" here is root or the uid the helper runs as (root in production;
// a helper running as a user gains nothing from its own files).

// maxSymlinks bounds the symlinks followed while a path is checked, as
// the kernel's ELOOP does.
const maxSymlinks = 40

// maxConfigBytes bounds the helper config read at start-up.
const maxConfigBytes = 1 << 20

func trustedOwner(uid uint32) bool {
	return uid == 0 || int(uid) == os.Geteuid()
}

// checkRootDir checks that nobody but root can change dir or any
// directory above it, and returns dir with its symlinks resolved (each
// symlink checked on the way): the path to use from then on. dir itself
// must be root's alone; above it a root-owned sticky directory such as
// /tmp is allowed, since no one else can rename or replace an entry in it
// that they do not own.
func checkRootDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	links := 0
	resolved, err := resolveTrusted(abs, &links)
	if err != nil {
		return "", err
	}
	fi, err := os.Lstat(resolved)
	if err != nil {
		return "", err
	}
	if err := checkOwnDir(resolved, fi); err != nil {
		return "", err
	}
	return resolved, nil
}

// resolveTrusted walks path from / one component at a time, without
// following anything it has not checked: every directory on the way
// must be one only root can change (sticky allowed), every symlink
// root's, and its target is walked the same way.
func resolveTrusted(path string, links *int) (string, error) {
	cur := "/"
	fi, err := os.Lstat(cur)
	if err != nil {
		return "", err
	}
	if err := checkAncestor(cur, fi); err != nil {
		return "", err
	}
	rest := strings.Split(strings.TrimPrefix(filepath.Clean(path), "/"), "/")
	for i, name := range rest {
		if name == "" {
			continue
		}
		next := filepath.Join(cur, name)
		fi, err := os.Lstat(next)
		if err != nil {
			return "", err
		}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			if *links++; *links > maxSymlinks {
				return "", fmt.Errorf("%s: more than %d symlinks on the way", path, maxSymlinks)
			}
			if uid := ownerOf(fi); !trustedOwner(uid) {
				return "", fmt.Errorf("%s is a symlink owned by uid %d, not root; refusing to follow it", next, uid)
			}
			target, err := os.Readlink(next)
			if err != nil {
				return "", err
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(cur, target)
			}
			if cur, err = resolveTrusted(target, links); err != nil {
				return "", err
			}
		case fi.IsDir():
			if err := checkAncestor(next, fi); err != nil {
				return "", err
			}
			cur = next
		default:
			if i < len(rest)-1 {
				return "", fmt.Errorf("%s is not a directory", next)
			}
			cur = next
		}
	}
	return cur, nil
}

func ownerOf(fi os.FileInfo) uint32 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Uid
	}
	return ^uint32(0) // no owner known: trusted by no one
}

// checkAncestor accepts a directory only root can change entries of:
// root's and not writable by group or others, or root's and sticky.
func checkAncestor(path string, fi os.FileInfo) error {
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", path)
	}
	if uid := ownerOf(fi); !trustedOwner(uid) {
		return fmt.Errorf("%s is owned by uid %d, not root, who could replace what is in it; refusing to use it", path, uid)
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&os.ModeSticky == 0 {
		return fmt.Errorf("%s is writable by group or others (mode %#o), who could replace what is in it; refusing to use it", path, fi.Mode().Perm())
	}
	return nil
}

// checkOwnDir accepts the directory that holds one of the helper's own
// files: root's alone, not even sticky (others could add entries to it).
func checkOwnDir(path string, fi os.FileInfo) error {
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", path)
	}
	if uid := ownerOf(fi); !trustedOwner(uid) {
		return fmt.Errorf("%s is owned by uid %d, not root; refusing to use it", path, uid)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s is writable by group or others (mode %#o); refusing to use it", path, fi.Mode().Perm())
	}
	return nil
}

// checkRootFile accepts one of the helper's own files, as fstat or lstat
// found it: a regular file, root's, not writable by group or others.
func checkRootFile(path string, st *unix.Stat_t) error {
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s is not a regular file; refusing to use it", path)
	}
	if !trustedOwner(st.Uid) {
		return fmt.Errorf("%s is owned by uid %d, not root; refusing to use it", path, st.Uid)
	}
	if perm := st.Mode & 0o777; perm&0o022 != 0 {
		return fmt.Errorf("%s is writable by group or others (mode %#o); refusing to use it", path, perm)
	}
	return nil
}

// readRootFile reads a file that only root can change, from the one
// descriptor it checked: the path is checked, then opened once without
// following a symlink, and the open file checked and read, so nothing
// can be swapped in between.
func readRootFile(path string) ([]byte, error) {
	dir, err := checkRootDir(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	full := filepath.Join(dir, filepath.Base(path))
	// O_NONBLOCK: a FIFO in its place must not hang the start.
	fd, err := unix.Open(full, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ELOOP) {
		return nil, fmt.Errorf("%s is a symlink; refusing to use it", full)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: full, Err: err}
	}
	f := os.NewFile(uintptr(fd), full)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "fstat", Path: full, Err: err}
	}
	if err := checkRootFile(full, &st); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", full, err)
	}
	if len(data) > maxConfigBytes {
		return nil, fmt.Errorf("%s is over %d bytes; refusing to read it", full, maxConfigBytes)
	}
	return data, nil
}

// ensureRootDir makes dir (0755, as the socket's directory must be
// reachable by users) where it is missing and checks it as checkRootDir
// does, returning its resolved path and the directories it made, for the
// caller to remove if its start fails later. What it is missing is made
// only under directories that pass the check; if the finished directory
// does not (someone else made it first), what this call made is removed.
func ensureRootDir(dir string) (string, []string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", nil, err
	}
	existing := abs
	for {
		if _, err := os.Lstat(existing); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", nil, err
		}
		existing = filepath.Dir(existing)
	}
	if existing == abs {
		resolved, err := checkRootDir(abs)
		return resolved, nil, err
	}
	links := 0
	parent, err := resolveTrusted(existing, &links)
	if err != nil {
		return "", nil, err
	}
	fi, err := os.Lstat(parent)
	if err != nil {
		return "", nil, err
	}
	if err := checkAncestor(parent, fi); err != nil {
		return "", nil, err
	}
	rel, err := filepath.Rel(existing, abs)
	if err != nil {
		return "", nil, err
	}
	var made []string
	cur := parent
	for _, name := range strings.Split(rel, "/") {
		cur = filepath.Join(cur, name)
		err := os.Mkdir(cur, 0o755)
		switch {
		case err == nil:
			made = append(made, cur)
			err = os.Chmod(cur, 0o755) // whatever the umask
		case errors.Is(err, os.ErrExist):
			// Made by someone else meanwhile: go no further into it
			// unless it is a directory only root can change.
			var fi os.FileInfo
			if fi, err = os.Lstat(cur); err == nil {
				err = checkAncestor(cur, fi)
			}
		default:
			err = fmt.Errorf("create %s: %w", cur, err)
		}
		if err != nil {
			return "", nil, errors.Join(err, removeDirs(made))
		}
	}
	resolved, err := checkRootDir(cur)
	if err != nil {
		return "", nil, errors.Join(err, removeDirs(made))
	}
	return resolved, made, nil
}

// removeDirs removes the directories made, innermost first. One that
// is no longer empty is left: what is in it is not this call's to remove.
func removeDirs(made []string) error {
	var errs []error
	for i := len(made) - 1; i >= 0; i-- {
		if err := os.Remove(made[i]); err != nil && !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkExecutable refuses to run from a binary that anyone but root
// could have changed, or could change before the next start: the
// running program's file must be root's and not writable by group or
// others, and so must every directory above it.
func checkExecutable() error {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return fmt.Errorf("find the running binary: %w", err)
	}
	if strings.HasSuffix(exe, " (deleted)") {
		return fmt.Errorf("the running binary %s was removed or replaced since it started; refusing to run", exe)
	}
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &st); err != nil {
		return fmt.Errorf("stat the running binary %s: %w", exe, err)
	}
	if err := checkRootFile(exe, &st); err != nil {
		return fmt.Errorf("binary: %w", err)
	}
	if _, err := checkRootDir(filepath.Dir(exe)); err != nil {
		return fmt.Errorf("binary %s: %w", exe, err)
	}
	return nil
}
