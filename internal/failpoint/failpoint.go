// Package failpoint stops a banger process at a named point, so the
// crash tests can kill it — or the helper, or a VMM — exactly there. It
// is armed only by the environment a test sets: BANGER_FAILPOINT names
// the point ("vm.create:boot": an operation and one of its stages, as
// oplog records them), BANGER_FAILPOINT_FILE a file the process writes
// its pid to when it gets there; it then waits until that file is
// removed (or it is killed). The point fires once per process. Unarmed,
// a Hit costs a string comparison.
package failpoint

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"
)

// The environment variables that arm a failpoint.
const (
	EnvPoint = "BANGER_FAILPOINT"
	EnvFile  = "BANGER_FAILPOINT_FILE"
)

// maxPause bounds a pause whose test went away without removing the
// file: the process carries on.
const maxPause = 10 * time.Minute

// pollEvery is how often a paused process looks for its file.
const pollEvery = 5 * time.Millisecond

type armed struct{ point, file string }

var (
	current = armed{point: os.Getenv(EnvPoint), file: os.Getenv(EnvFile)}
	fired   atomic.Bool
)

// Check reports a failpoint armed wrongly: a point without a file or a
// file without a point, a file that is not an absolute path in an
// existing directory, or one that exists already (a test removes it to
// let the process go on, so a leftover would never pause).
func Check() error {
	return current.check()
}

func (a armed) check() error {
	switch {
	case a.point == "" && a.file == "":
		return nil
	case a.point == "":
		return fmt.Errorf("%s is set but %s is not; set both (a point such as \"vm.create:boot\", and a file to report reaching it), or neither", EnvFile, EnvPoint)
	case a.file == "":
		return fmt.Errorf("%s=%q is set but %s is not; set both, or neither", EnvPoint, a.point, EnvFile)
	case !filepath.IsAbs(a.file):
		return fmt.Errorf("%s=%q: not an absolute path", EnvFile, a.file)
	}
	if fi, err := os.Stat(filepath.Dir(a.file)); err != nil || !fi.IsDir() {
		return fmt.Errorf("%s=%q: its directory does not exist", EnvFile, a.file)
	}
	if _, err := os.Lstat(a.file); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s=%q exists already; remove it first", EnvFile, a.file)
	}
	return nil
}

// Armed is the point armed in this process, "" for none.
func Armed() string { return current.point }

// Hit marks the point name. When it is the armed point, reached for the
// first time, the process writes its pid to the failpoint file and waits
// until the file is gone.
func Hit(name string) {
	if current.point == "" || name != current.point || !fired.CompareAndSwap(false, true) {
		return
	}
	current.pause()
}

func (a armed) pause() {
	if err := os.WriteFile(a.file, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		return // the test sees no file and reports the point never reached
	}
	deadline := time.Now().Add(maxPause)
	for time.Now().Before(deadline) {
		if _, err := os.Lstat(a.file); errors.Is(err, os.ErrNotExist) {
			return
		}
		time.Sleep(pollEvery)
	}
}
