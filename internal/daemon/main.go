package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"banger/internal/api"
	"banger/internal/cmdmain"
	"banger/internal/config"
	"banger/internal/failpoint"
	"banger/internal/oplog"
	"banger/internal/paths"
)

const usage = "usage: bangerd [--config PATH]\n\nbangerd is banger's per-user daemon; the banger CLI starts it on demand.\n\n"

// Main is bangerd's entry point: it parses args, loads the config and
// runs the daemon until SIGTERM or SIGINT. It returns the exit status.
func Main(ctx context.Context, args []string, stderr io.Writer) int {
	fs := cmdmain.NewFlags("bangerd", usage, stderr)
	configPath := fs.String("config", "", "config file (default $BANGER_CONFIG or $XDG_CONFIG_HOME/banger/config.toml)")
	if code, exit := fs.Parse(args); exit {
		return code
	}
	if err := run(ctx, *configPath, stderr); err != nil {
		fmt.Fprintf(stderr, "bangerd: %v\n", err)
		if errors.As(err, new(configError)) {
			return api.ExitConfig
		}
		return 1
	}
	return 0
}

// configError is a config bangerd will not start on.
type configError struct{ error }

func (e configError) Unwrap() error { return e.error }

func run(ctx context.Context, configPath string, stderr io.Writer) error {
	layout, err := paths.Resolve(os.Getenv, configPath)
	if err != nil {
		return err
	}
	if err := failpoint.Check(); err != nil {
		return err
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return fmt.Errorf("home directory: %w", err)
	}
	cfg, err := config.Load(layout, home)
	if err != nil {
		return configError{err}
	}
	_, statErr := os.Stat(layout.ConfigFile)
	logger, level, err := oplog.NewLogger(stderr, cfg.LogLevel)
	if err != nil {
		return configError{fmt.Errorf("config %s: log_level: %w", layout.ConfigFile, err)}
	}
	if fp := failpoint.Armed(); fp != "" {
		logger.Warn("failpoint armed: this daemon stops at it, for a crash test", "point", fp, "file", os.Getenv(failpoint.EnvFile))
	}
	ctx, stop := cmdmain.SignalContext(ctx)
	defer stop()
	return Run(ctx, Options{
		Layout:      layout,
		Config:      cfg,
		ConfigFound: statErr == nil,
		Logger:      logger,
		LogLevel:    level,
	})
}
