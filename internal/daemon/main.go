package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"banger/internal/buildinfo"
	"banger/internal/config"
	"banger/internal/paths"
)

// Main is bangerd's entry point: it parses args, loads the config and
// runs the daemon until SIGTERM or SIGINT. It returns the exit status.
func Main(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("bangerd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (default $BANGER_CONFIG or $XDG_CONFIG_HOME/banger/config.toml)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: bangerd [--config PATH]\n\nbangerd is banger's per-user daemon; the banger CLI starts it on demand.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bangerd: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stderr, "bangerd %s (protocol %d)\n", buildinfo.Version(), buildinfo.ProtocolVersion)
		return 0
	}

	if err := run(ctx, *configPath, stderr); err != nil {
		fmt.Fprintf(stderr, "bangerd: %v\n", err)
		return 1
	}
	return 0
}

func run(ctx context.Context, configPath string, stderr io.Writer) error {
	layout, err := paths.Resolve(os.Getenv, configPath)
	if err != nil {
		return err
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return fmt.Errorf("home directory: %w", err)
	}
	cfg, err := config.Load(layout, home)
	if err != nil {
		return err
	}
	_, statErr := os.Stat(layout.ConfigFile)
	logger, level, err := newDaemonLogger(stderr, cfg.LogLevel)
	if err != nil {
		return fmt.Errorf("config %s: log_level: %w", layout.ConfigFile, err)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return Run(ctx, Options{
		Layout:      layout,
		Config:      cfg,
		ConfigFound: statErr == nil,
		Logger:      logger,
		LogLevel:    level,
	})
}
