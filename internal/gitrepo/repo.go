// Package gitrepo is banger's host side of a workspace: it inspects the
// user's git repository, builds the repository a guest gets from it (in
// the seed's three modes), and imports the branch a guest hands back as
// a bundle. It shells out to git; it knows nothing of VMs, SSH or the
// store.
//
// Two kinds of git run here. Reading the host repository's state (what
// is staged, what is ignored) runs with the user's own configuration,
// so banger sees what `git status` shows them. Building the guest's
// repository and importing a bundle run with the user's global and
// system configuration shut out (isolated), so no URL rewrite, filter
// (Git LFS) or hook of theirs reaches content that is not theirs, and
// nothing asks for a password.
package gitrepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"banger/internal/errdefs"
)

// Repo is a host git work tree, as Inspect found it.
type Repo struct {
	SourcePath string // the path asked for, absolute and cleaned
	Root       string // the top of the work tree
	Name       string // the base name of Root
	GitDir     string // the repository's git directory (absolute)
	CommonDir  string // where objects and refs live: GitDir, or the main one for a linked work tree
	Head       string // HEAD's commit, full hex
	Branch     string // HEAD's branch ("main"), "" when HEAD is detached
	UserName   string // user.name from the host's git configuration, "" when unset
	UserEmail  string // user.email, likewise
}

// ObjectsDir is where the repository's objects are.
func (r Repo) ObjectsDir() string { return filepath.Join(r.CommonDir, "objects") }

// invalid marks a message that says it all as the user's mistake.
func invalid(format string, args ...any) error {
	return errdefs.Mark(errdefs.ErrInvalidArgument, fmt.Errorf(format, args...))
}

// Inspect finds the git work tree path is in and what its HEAD is. A
// path outside any work tree, a bare repository, a repository with no
// commits and a missing git are each a clear error.
func Inspect(ctx context.Context, path string) (Repo, error) {
	if path == "" {
		return Repo{}, invalid("no repository path given")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return Repo{}, invalid("repository path %q: %v", path, err)
	}
	abs = filepath.Clean(abs)
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return Repo{}, errdefs.Mark(errdefs.ErrNotFound, fmt.Errorf("%s does not exist", abs))
	case err != nil:
		return Repo{}, invalid("repository path %s: %v", abs, errdefs.PathCause(err))
	case !fi.IsDir():
		return Repo{}, invalid("%s is not a directory; give a directory inside a git work tree", abs)
	}
	if err := needGit(); err != nil {
		return Repo{}, err
	}
	r := Repo{SourcePath: abs}
	out, err := Host(ctx, abs, nil, "rev-parse", "--is-bare-repository", "--is-inside-work-tree")
	if err != nil {
		return r, invalid("%s is not inside a git work tree (banger workspaces start from a git repository: run 'git init' and commit first)", abs)
	}
	flags := strings.Fields(string(out))
	if len(flags) == 2 && flags[0] == "true" {
		return r, invalid("%s is a bare git repository; banger needs a work tree (clone it: git clone %s)", abs, abs)
	}
	if len(flags) != 2 || flags[1] != "true" {
		return r, invalid("%s is not inside a git work tree (it is inside a git directory)", abs)
	}
	out, err = Host(ctx, abs, nil, "rev-parse", "--path-format=absolute", "--show-toplevel", "--absolute-git-dir", "--git-common-dir")
	if err != nil {
		return r, err
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 {
		return r, fmt.Errorf("git rev-parse in %s: unexpected output %q", abs, out)
	}
	r.Root, r.GitDir, r.CommonDir = lines[0], lines[1], lines[2]
	r.Name = filepath.Base(r.Root)
	head, err := Host(ctx, r.Root, nil, "rev-parse", "--verify", "-q", "HEAD^{commit}")
	if err != nil {
		return r, invalid("repository %s has no commits yet; commit something first (a workspace's branch starts at HEAD)", r.Root)
	}
	r.Head = strings.TrimSpace(string(head))
	if b, err := Host(ctx, r.Root, nil, "symbolic-ref", "-q", "--short", "HEAD"); err == nil {
		r.Branch = strings.TrimSpace(string(b))
	}
	r.UserName = configValue(ctx, r.Root, "user.name")
	r.UserEmail = configValue(ctx, r.Root, "user.email")
	return r, nil
}

// configValue is a host git configuration value, "" when unset.
func configValue(ctx context.Context, dir, key string) string {
	out, err := Host(ctx, dir, nil, "config", "--get", key)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// needGit says clearly when git is not installed.
func needGit() error {
	if _, err := exec.LookPath("git"); err != nil {
		return errdefs.Mark(errdefs.ErrUnavailable, errors.New("git is not installed on this host; install it (apt-get install git)"))
	}
	return nil
}

// baseEnv is what every git banger runs gets: no prompts, no pager, no
// optional locks (reading the host's state must not rewrite its index),
// messages in English so errors can be read back, and no protocol but
// local files.
var baseEnv = []string{
	"GIT_TERMINAL_PROMPT=0",
	"GIT_PAGER=cat",
	"GIT_OPTIONAL_LOCKS=0",
	"GIT_ALLOW_PROTOCOL=file",
	"LC_ALL=C",
}

// isolatedEnv shuts out the user's global and system configuration.
var isolatedEnv = []string{
	"GIT_CONFIG_GLOBAL=/dev/null",
	"GIT_CONFIG_NOSYSTEM=1",
	"GIT_CONFIG_COUNT=0",
}

// Host runs git in dir with the user's configuration and returns its
// standard output; a failure carries git's standard error.
func Host(ctx context.Context, dir string, stdin io.Reader, args ...string) ([]byte, error) {
	return runGit(ctx, dir, baseEnv, stdin, nil, args...)
}

// Isolated runs git in dir without the user's global or system
// configuration; env adds variables (GIT_OBJECT_DIRECTORY, ...).
func Isolated(ctx context.Context, dir string, env []string, stdin io.Reader, args ...string) ([]byte, error) {
	e := append(append(append([]string{}, baseEnv...), isolatedEnv...), env...)
	return runGit(ctx, dir, e, stdin, nil, args...)
}

// localEnvVars are the variables that point git at a repository
// (`git rev-parse --local-env-vars`): one inherited from whoever started
// banger must not send git to another repository than the one named.
var localEnvVars = []string{
	"GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_CONFIG", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT",
	"GIT_OBJECT_DIRECTORY", "GIT_DIR", "GIT_WORK_TREE", "GIT_IMPLICIT_WORK_TREE", "GIT_GRAFT_FILE",
	"GIT_INDEX_FILE", "GIT_NO_REPLACE_OBJECTS", "GIT_REPLACE_REF_BASE", "GIT_PREFIX", "GIT_INTERNAL_SUPER_PREFIX",
	"GIT_SHALLOW_FILE", "GIT_COMMON_DIR", "GIT_QUARANTINE_PATH", "GIT_NAMESPACE",
}

// inheritedEnv is this process's environment without localEnvVars.
func inheritedEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(localEnvVars, name) && !strings.HasPrefix(name, "GIT_CONFIG_KEY_") && !strings.HasPrefix(name, "GIT_CONFIG_VALUE_") {
			env = append(env, kv)
		}
	}
	return env
}

// maxStderr bounds how much of git's standard error an error carries.
const maxStderr = 4 << 10

func runGit(ctx context.Context, dir string, env []string, stdin io.Reader, stdout io.Writer, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(inheritedEnv(), env...)
	cmd.Stdin = stdin
	var out bytes.Buffer
	if stdout != nil {
		cmd.Stdout = stdout
	} else {
		cmd.Stdout = &out
	}
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{buf: &stderr, max: maxStderr}
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return out.Bytes(), fmt.Errorf("git %s: %s", firstWords(args), msg)
	}
	return out.Bytes(), nil
}

// firstWords names a git command in an error by its subcommand, not by
// every option and path it was given.
func firstWords(args []string) string {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-c" || a == "-C":
			i++
		case !strings.HasPrefix(a, "-"):
			return a
		}
	}
	return strings.Join(args, " ")
}

// limitedBuffer keeps the first max bytes written to it and drops the
// rest, so a chatty or hostile process cannot fill memory.
type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		if len(p) > room {
			l.buf.Write(p[:room])
		} else {
			l.buf.Write(p)
		}
	}
	return len(p), nil
}
