package e2e

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"banger/internal/api"
	"banger/internal/rpc"
)

// BenchmarkDaemonRPC: calls to a real bangerd holding 1,000 VM records.
// /ping is a daemon.ping round trip, against /ping-raw, a bare
// unix-socket line exchange (connect, one line each way) with an echo
// server in a process of its own, as bangerd is: a round trip to
// another process costs two cross-process wake-ups that one inside the
// benchmark's own process does not. /list-server is vm.list through the RPC (the daemon reads and
// encodes every record), /list-cli is the whole `banger vm ls` process,
// and /list-raw a bare SQLite query of the same rows on an open
// connection, the raw work both wrap. Each iteration is one sample.
func BenchmarkDaemonRPC(b *testing.B) {
	e := newBenchEnv(b, "")
	e.must("daemon", "stop")
	db := filepath.Join(e.home, ".local", "state", "banger", "banger.db")
	addVMRecords(b, db, 1000)
	e.must("daemon", "start")
	sock := filepath.Join(e.run, "banger", "bangerd.sock")
	ctx := context.Background()

	timed := func(b *testing.B, unit string, fn func()) {
		s := newSamples(b, unit)
		for b.Loop() {
			t0 := time.Now()
			fn()
			s.add(float64(time.Since(t0).Nanoseconds()) / 1e3)
		}
		s.report()
	}
	b.Run("ping", func(b *testing.B) {
		timed(b, "us/call", func() {
			var res api.PingResult
			if err := rpc.Call(ctx, sock, api.MethodDaemonPing, nil, &res); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("ping-raw", func(b *testing.B) {
		echo := echoProcess(b)
		msg := []byte(`{"version":1,"method":"daemon.ping","params":null,"op_id":"op-000000000000"}` + "\n")
		timed(b, "us/call", func() {
			c, err := net.Dial("unix", echo)
			if err != nil {
				b.Fatal(err)
			}
			c.Write(msg)
			if _, err := bufio.NewReader(c).ReadBytes('\n'); err != nil {
				b.Fatal(err)
			}
			c.Close()
		})
	})
	b.Run("list-server", func(b *testing.B) {
		timed(b, "us/call", func() {
			var vms []api.VMDetail
			if err := rpc.Call(ctx, sock, api.MethodVMList, nil, &vms); err != nil || len(vms) != 1000 {
				b.Fatalf("vm.list: %d vms, %v", len(vms), err)
			}
		})
	})
	b.Run("list-cli", func(b *testing.B) {
		timed(b, "us/call", func() {
			cmd := exec.Command(filepath.Join(e.bin, "banger"), "vm", "ls")
			cmd.Env = e.env
			if out, err := cmd.CombinedOutput(); err != nil || len(out) < 1000*40 {
				b.Fatalf("banger vm ls: %v (%d bytes)", err, len(out))
			}
		})
	})
	b.Run("list-raw", func(b *testing.B) {
		conn, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		timed(b, "us/call", func() {
			rows, err := conn.QueryContext(ctx, `SELECT id, name, image_id, state, created_at, updated_at,
	last_touched_at, spec, runtime, stats FROM vms ORDER BY created_at, name`)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for rows.Next() {
				var id, name, image, state, created, updated, touched, spec, runtime, stats sql.NullString
				if err := rows.Scan(&id, &name, &image, &state, &created, &updated, &touched, &spec, &runtime, &stats); err != nil {
					b.Fatal(err)
				}
				n++
			}
			rows.Close()
			if n != 1000 {
				b.Fatalf("%d rows", n)
			}
		})
	})
}

// echoEnv makes the test binary an echo server on the socket it names
// (see TestMain).
const echoEnv = "BANGER_BENCH_ECHO_SOCKET"

// TestMain runs the tests, or, with echoEnv set, only the echo server.
func TestMain(m *testing.M) {
	if sock := os.Getenv(echoEnv); sock != "" {
		ln, err := net.Listen("unix", sock)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		serveEcho(ln)
		return
	}
	os.Exit(m.Run())
}

// echoProcess starts the test binary as an echo server in a process of
// its own and returns its socket once it listens.
func echoProcess(b *testing.B) string {
	dir, err := os.MkdirTemp("", "bge")
	if err != nil {
		b.Fatal(err)
	}
	sock := filepath.Join(dir, "echo.sock")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), echoEnv+"="+sock)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		os.RemoveAll(dir)
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return sock
		}
		if time.Now().After(deadline) {
			b.Fatal("echo server did not listen")
		}
	}
}

// serveEcho answers each connection's first line with itself.
func serveEcho(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			if line, err := bufio.NewReader(c).ReadBytes('\n'); err == nil {
				c.Write(line)
			}
		}()
	}
}
