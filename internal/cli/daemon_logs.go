package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) daemonLogsCommand() *cobra.Command {
	var follow bool
	var lines int
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Print bangerd's log (JSON lines); -f follows it",
		Long: `Print bangerd's log: one JSON object per line, each operation's records
carrying its op_id. Find everything one command did with
  banger daemon logs -n 0 | grep op-0123456789ab`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if lines < 0 {
				return usageError{fmt.Errorf("--lines must be 0 (all) or more, got %d", lines), cmd.CommandPath()}
			}
			layout, err := a.layout()
			if err != nil {
				return err
			}
			return a.printFile(cmd.Context(), layout.LogPath, lines, follow,
				"no daemon log at "+layout.LogPath+" yet: bangerd has not been started by banger as this user")
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines until interrupted")
	cmd.Flags().IntVarP(&lines, "lines", "n", 100, "print only the last N lines (0: all)")
	return cmd
}

// printFile prints the last n lines of path (all when n is 0), then, when
// follow is set, new lines as they are written, until ctx is cancelled.
// missing is the error for a file that does not exist (when not
// following; following waits for it).
func (a *app) printFile(ctx context.Context, path string, n int, follow bool, missing string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		if !follow {
			return errors.New(missing)
		}
		if f, err = waitForFile(ctx, path); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	defer f.Close()

	var tail []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		tail = append(tail, sc.Text())
		if n > 0 && len(tail) > n {
			tail = tail[1:]
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	for _, line := range tail {
		fmt.Fprintln(a.stdout, line)
	}
	if !follow {
		return nil
	}
	return a.followLog(ctx, f, path)
}

// followLog copies what is appended to f until ctx ends, reopening the
// file when it is rotated or truncated.
func (a *app) followLog(ctx context.Context, f *os.File, path string) error {
	offset, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		fi, err := os.Stat(path)
		if err != nil {
			continue // rotated away; the new file appears shortly
		}
		cur, _ := f.Stat()
		if !os.SameFile(fi, cur) || fi.Size() < offset {
			nf, err := os.Open(path)
			if err != nil {
				continue
			}
			f.Close()
			f, offset = nf, 0
			defer nf.Close()
		}
		written, err := io.Copy(a.stdout, f)
		offset += written
		if err != nil {
			return err
		}
	}
}

func waitForFile(ctx context.Context, path string) (*os.File, error) {
	for {
		f, err := os.Open(path)
		if err == nil {
			return f, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
