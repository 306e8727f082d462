package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"banger/internal/helperapi"
)

// install lays banger out for s.user. Everything that could refuse
// (missing binaries, an invalid helper config) is checked before the
// first change.
func (s *systemRun) install(ctx context.Context) error {
	from, err := s.sourceDir()
	if err != nil {
		return err
	}
	cfg, found, err := s.loadHelperConfig()
	if err != nil {
		return fmt.Errorf("%w (left as it is: fix or remove it, then run '%s' again)", err, s.command)
	}

	binaries := map[string]fileState{}
	for _, name := range bangerBinaries {
		if binaries[name], err = s.installBinary(from, name); err != nil {
			return err
		}
	}
	configChanged, err := s.installHelperConfig(cfg, found)
	if err != nil {
		return err
	}
	helperUnitChanged, err := s.installFile(helperUnitPath, unitFileMode, helperUnit(s.opts.prefix))
	if err != nil {
		return err
	}
	userUnitExisted, err := pathExists(s.hostPath(userUnitPath))
	if err != nil {
		return err
	}
	userUnitChanged, err := s.installFile(userUnitPath, unitFileMode, bangerdUserUnit(s.opts.prefix))
	if err != nil {
		return err
	}
	restart := binaries["banger-helper"] != fileCurrent || configChanged || helperUnitChanged
	if err := s.startHelper(ctx, helperUnitChanged, restart); err != nil {
		return err
	}

	s.note("to start bangerd at login, run %s: systemctl --user enable --now bangerd (banger also starts bangerd on demand)", s.user.asWho())
	if userUnitChanged && userUnitExisted {
		s.note("a bangerd started by systemd picks up the new unit after: systemctl --user daemon-reload && systemctl --user restart bangerd")
	} else if binaries["bangerd"] == fileDiffers {
		s.note("a bangerd that is already running keeps the old binary until it is restarted: banger daemon stop (banger starts it again on demand)")
	}
	return nil
}

// sourceDir is where the binaries are copied from, and checks that all
// three are there.
func (s *systemRun) sourceDir() (string, error) {
	from := s.opts.from
	if from == "" {
		exe, err := s.host.executable()
		if err != nil {
			return "", fmt.Errorf("find this banger's directory: %w (pass --from DIR)", err)
		}
		from = filepath.Dir(exe)
	}
	from, err := filepath.Abs(from)
	if err != nil {
		return "", err
	}
	for _, name := range bangerBinaries {
		src := filepath.Join(from, name)
		fi, err := os.Stat(src)
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%s not found in %s: run '%s' first, or pass --from DIR", name, from, binaryBuildHint)
		}
		if err != nil {
			return "", err
		}
		if !fi.Mode().IsRegular() {
			return "", fmt.Errorf("%s is not a regular file", src)
		}
	}
	return from, nil
}

// loadHelperConfig reads the existing helper config; found is false when
// there is none, and cfg is then the default.
func (s *systemRun) loadHelperConfig() (cfg helperapi.Config, found bool, err error) {
	path := s.hostPath(helperapi.DefaultConfigPath)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return helperapi.DefaultConfig(), false, nil
	}
	if err != nil {
		return cfg, false, fmt.Errorf("helper config: %w", err)
	}
	cfg, err = helperapi.ParseConfig(data, path)
	return cfg, true, err
}

// installBinary copies from/name into <prefix>/bin unless it is already
// there, and says what it found there.
func (s *systemRun) installBinary(from, name string) (fileState, error) {
	src, dst := filepath.Join(from, name), s.binPath(name)
	real := s.hostPath(dst)
	if srcInfo, err := os.Stat(src); err == nil {
		if dstInfo, err := os.Stat(real); err == nil && os.SameFile(srcInfo, dstInfo) {
			s.already("unchanged", dst, "unchanged "+real+" (it is the binary being installed)")
			return fileCurrent, nil
		}
	}
	state, err := checkFile(real, binaryFileMode, func() (bool, error) { return sameFiles(src, real) })
	if err != nil || state == fileCurrent {
		if err == nil {
			s.already("unchanged", dst, "unchanged "+real)
		}
		return state, err
	}
	s.reportWrite(state, dst)
	if s.opts.dryRun {
		return state, nil
	}
	return state, copyFileAtomic(real, src, binaryFileMode)
}

// installFile writes data to a host path unless it already holds it.
func (s *systemRun) installFile(path string, mode fs.FileMode, data []byte) (bool, error) {
	real := s.hostPath(path)
	state, err := checkFile(real, mode, func() (bool, error) { return sameBytes(real, data) })
	if err != nil {
		return false, err
	}
	if state == fileCurrent {
		s.already("unchanged", path, "unchanged "+real)
		return false, nil
	}
	s.reportWrite(state, path)
	if s.opts.dryRun {
		return true, nil
	}
	return true, writeBytesAtomic(real, mode, data)
}

// reportWrite says that install writes path, naming the file written
// (under --root, if set).
func (s *systemRun) reportWrite(state fileState, path string) {
	real := s.hostPath(path)
	if state == fileMissing {
		s.done("installed", path, "installed "+real, "install "+real)
	} else {
		s.done("updated", path, "updated "+real, "update "+real)
	}
}

// installHelperConfig allows the user's uid in the helper config, which
// is otherwise kept as it is.
func (s *systemRun) installHelperConfig(cfg helperapi.Config, found bool) (bool, error) {
	path := helperapi.DefaultConfigPath
	real, uid := s.hostPath(path), s.user.UID
	if err := s.secure(filepath.Dir(path), configDirMode|fs.ModeDir); err != nil {
		return false, err
	}
	if found && slices.Contains(cfg.AllowedUIDs, uid) {
		if err := s.secure(path, configFileMode); err != nil {
			return false, err
		}
		s.already("unchanged", path, fmt.Sprintf("unchanged %s (uid %d already allowed)", real, uid))
		return false, nil
	}
	cfg.AllowedUIDs = append(cfg.AllowedUIDs, uid)
	if found {
		s.done("allowed", path, fmt.Sprintf("allowed uid %d in %s", uid, real), fmt.Sprintf("allow uid %d in %s", uid, real))
	} else {
		s.done("created", path, fmt.Sprintf("created %s allowing uid %d", real, uid), fmt.Sprintf("create %s allowing uid %d", real, uid))
	}
	if s.opts.dryRun {
		return true, nil
	}
	return true, s.writeHelperConfig(cfg)
}

func (s *systemRun) writeHelperConfig(cfg helperapi.Config) error {
	data, err := cfg.Marshal()
	if err != nil {
		return fmt.Errorf("helper config: %w", err)
	}
	return writeBytesAtomic(s.hostPath(helperapi.DefaultConfigPath), configFileMode, data)
}

// secure makes a host path that decides who may use the helper — the
// config and its directory — have mode and belong to root (the running
// user), creating the directory when it is missing. Anyone else able to
// write them could allow themselves.
func (s *systemRun) secure(path string, mode fs.FileMode) error {
	real := s.hostPath(path)
	fi, err := os.Lstat(real)
	if errors.Is(err, fs.ErrNotExist) && mode.IsDir() {
		if s.opts.dryRun {
			return nil
		}
		if err := os.MkdirAll(real, mode.Perm()); err != nil {
			return err
		}
		// The umask may have narrowed MkdirAll's mode.
		return os.Chmod(real, mode.Perm())
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != mode.Type() {
		return fmt.Errorf("%s is a %s, expected a %s", real, describeType(fi.Mode()), describeType(mode))
	}
	if fi.Mode().Perm() == mode.Perm() && ownedByUs(fi) {
		return nil
	}
	msg := fmt.Sprintf("set owner uid %d and mode %04o on %s", os.Geteuid(), mode.Perm(), real)
	s.done("secured", path, msg, msg)
	if s.opts.dryRun {
		return nil
	}
	if err := os.Lchown(real, os.Geteuid(), os.Getegid()); err != nil {
		return err
	}
	return os.Chmod(real, mode.Perm())
}

func describeType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m.IsRegular():
		return "regular file"
	case m.Type() == fs.ModeSymlink:
		return "symlink"
	}
	return "special file"
}

// startHelper enables and starts banger-helper, restarting it when its
// unit, binary or config changed so it runs what was just installed.
func (s *systemRun) startHelper(ctx context.Context, unitChanged, restart bool) error {
	if why := s.systemctlSkipped(); why != "" {
		s.already("skipped", "", "skipped systemctl: "+why)
		if s.opts.root != "" {
			s.note("on the target system, start the helper with: systemctl daemon-reload && systemctl enable --now %s", helperUnitName)
		} else {
			s.note("start the helper by hand, as root: %s", helperCommandLine(s.opts.prefix))
		}
		return nil
	}
	if unitChanged {
		if err := s.systemctl(ctx, "daemon-reload"); err != nil {
			return err
		}
		s.done("reloaded", "", "ran systemctl daemon-reload", "run systemctl daemon-reload")
	}
	enabled := s.systemctlYes(ctx, "is-enabled", helperUnitName)
	active := s.systemctlYes(ctx, "is-active", helperUnitName)
	if !enabled && !active {
		if err := s.systemctl(ctx, "enable", "--now", helperUnitName); err != nil {
			return err
		}
		s.done("started", helperUnitName, "enabled and started "+helperUnitName, "enable and start "+helperUnitName)
		return nil
	}
	if !enabled {
		if err := s.systemctl(ctx, "enable", helperUnitName); err != nil {
			return err
		}
		s.done("enabled", helperUnitName, "enabled "+helperUnitName, "enable "+helperUnitName)
	}
	switch {
	case !active:
		if err := s.systemctl(ctx, "start", helperUnitName); err != nil {
			return err
		}
		s.done("started", helperUnitName, "started "+helperUnitName, "start "+helperUnitName)
	case restart:
		if err := s.systemctl(ctx, "restart", helperUnitName); err != nil {
			return err
		}
		s.done("restarted", helperUnitName, "restarted "+helperUnitName+" (its binary, unit or config changed)",
			"restart "+helperUnitName+" (its binary, unit or config changed)")
	case enabled:
		s.already("unchanged", helperUnitName, "unchanged "+helperUnitName+" (enabled and running)")
	}
	return nil
}
