package cli

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"banger/internal/api"
	"banger/internal/buildinfo"
)

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print banger's version, and the running daemon's if there is one",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := struct {
				Version         string          `json:"version"`
				ProtocolVersion int             `json:"protocol_version"`
				GoVersion       string          `json:"go_version"`
				Daemon          *api.PingResult `json:"daemon"`
			}{buildinfo.Version(), buildinfo.ProtocolVersion, runtime.Version(), nil}
			// Report a running daemon but do not start one just for this.
			if layout, err := a.layout(); err == nil {
				if res, err := a.ping(cmd.Context(), layout); err == nil {
					out.Daemon = &res
				}
			}
			if a.jsonOut {
				return a.printJSON(out)
			}
			fmt.Fprintf(a.stdout, "banger  %s (protocol %d, %s)\n", out.Version, out.ProtocolVersion, out.GoVersion)
			if out.Daemon != nil {
				fmt.Fprintf(a.stdout, "bangerd %s (protocol %d, pid %d)\n", out.Daemon.Version, out.Daemon.ProtocolVersion, out.Daemon.PID)
			} else {
				fmt.Fprintln(a.stdout, "bangerd not running")
			}
			return nil
		},
	}
}
