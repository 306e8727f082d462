package guest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// parseModulesList reads guestapi.ModulesList: one module file per line,
// in load order, blank lines and '#' comments skipped. Paths are taken
// relative to / whether or not they start with a slash.
func parseModulesList(r io.Reader) ([]string, error) {
	var mods []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		mods = append(mods, path.Join("/", line))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read modules list: %w", err)
	}
	return mods, nil
}

// moduleInitFlags returns the finit_module flags for a module file: a
// compressed one (.ko.xz, .ko.zst, .ko.gz) is handed to the kernel to
// decompress, which works when it was built with CONFIG_MODULE_DECOMPRESS.
func moduleInitFlags(file string) int {
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		if strings.HasSuffix(file, ext) {
			return unix.MODULE_INIT_COMPRESSED_FILE
		}
	}
	return 0
}

// loadModule loads one kernel module file. A module that is already
// loaded (or built in and so registered) is not an error.
func loadModule(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	err = unix.FinitModule(int(f.Fd()), "", moduleInitFlags(file))
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("finit_module: %w", err)
	}
	return nil
}

// loadModules loads every module in the list at listPath, in order, and
// returns how many of how many it loaded. A module that fails is logged
// and skipped: an optional one (vsock) must not stop the boot, and a
// required one (virtio_blk) shows up as a missing root disk, with its
// failure just above in the log. A missing list means a kernel with
// everything built in.
func loadModules(log *consoleLog, listPath string) (loaded, listed int) {
	f, err := os.Open(listPath)
	if errors.Is(err, os.ErrNotExist) {
		log.printf("no %s: loading no modules", listPath)
		return 0, 0
	}
	if err != nil {
		log.printf("modules not loaded: %v", err)
		return 0, 0
	}
	mods, err := parseModulesList(f)
	f.Close()
	if err != nil {
		log.printf("modules not loaded: %v", err)
		return 0, 0
	}
	for _, m := range mods {
		if err := loadModule(m); err != nil {
			log.printf("module %s not loaded (continuing): %v", m, err)
			continue
		}
		loaded++
	}
	return loaded, len(mods)
}
