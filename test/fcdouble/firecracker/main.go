// Command firecracker is banger's Firecracker test double (see package
// banger/test/fcdouble): built by the test suite under the name
// firecracker, started by bangerd exactly as the real one is.
//
//	firecracker --api-sock PATH [--id ID] [--http-api-max-payload-size N]
//	firecracker --version
//
// Requests are recorded, one JSON line each, in
// $FIRECRACKER_DOUBLE_RECORD, or else firecracker-double.calls.jsonl in
// the working directory (bangerd starts it in the VM's directory).
package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"banger/test/fcdouble"
)

const usage = "Usage: firecracker --api-sock <path> [--id <id>] [--http-api-max-payload-size <bytes>] | --version"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cfg, sock, code, exit := parseArgs(args)
	if exit {
		return code
	}
	apiDef, err := fcdouble.LoadAPI(fcdouble.DefinitionYAML())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg.API = apiDef
	cfg.Record = os.Getenv("FIRECRACKER_DOUBLE_RECORD")
	if cfg.Record == "" {
		cfg.Record = "firecracker-double.calls.jsonl"
	}
	d, err := fcdouble.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// As Firecracker: the socket path must not exist.
	l, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Fprintf(os.Stderr, "Failed to open the API socket at: %s. Check that it is not already used. (%v)\n", sock, err)
		return 1
	}
	defer os.Remove(sock)
	go func() {
		if err := d.Serve(l); err != nil {
			fmt.Fprintln(os.Stderr, "api server:", err)
		}
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	select {
	case <-d.Exited:
		return d.ExitCode
	case s := <-sigs:
		fmt.Fprintf(os.Stderr, "Shutting down VM after intercepting signal %v\n", s)
		d.Shutdown()
		return 0
	}
}

// parseArgs reads the command line into the double's Config and the API
// socket path. exit says the process should end now with code: after
// printing the version, or after reporting a bad command line.
func parseArgs(args []string) (cfg fcdouble.Config, sock string, code int, exit bool) {
	cfg = fcdouble.Config{Log: os.Stderr}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		value := func() (string, bool) {
			if i+1 >= len(args) {
				fmt.Fprintf(os.Stderr, "Arguments parsing error: Found argument '%s' without a value.\n\n%s\n", arg, usage)
				return "", false
			}
			i++
			return args[i], true
		}
		var ok bool
		switch arg {
		case "--version":
			fmt.Printf("Firecracker v%s (banger test double)\n", fcdouble.Version)
			return cfg, sock, 0, true
		case "--api-sock":
			if sock, ok = value(); !ok {
				return cfg, sock, 1, true
			}
		case "--id":
			if cfg.ID, ok = value(); !ok {
				return cfg, sock, 1, true
			}
		case "--http-api-max-payload-size":
			v, ok := value()
			if !ok {
				return cfg, sock, 1, true
			}
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				fmt.Fprintf(os.Stderr, "Arguments parsing error: invalid --http-api-max-payload-size %q\n", v)
				return cfg, sock, 1, true
			}
			cfg.MaxPayload = n
		default:
			fmt.Fprintf(os.Stderr, "Arguments parsing error: Found argument '%s' which wasn't expected, or isn't valid in this context (the test double takes only these):\n\n%s\n", arg, usage)
			return cfg, sock, 1, true
		}
	}
	if sock == "" {
		fmt.Fprintf(os.Stderr, "the test double needs --api-sock\n\n%s\n", usage)
		return cfg, sock, 1, true
	}
	return cfg, sock, 0, false
}
