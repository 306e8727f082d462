package rpc

import (
	"bufio"
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkCall measures a full Call — dial, request, dispatch, response —
// against a server answering a trivial method. Compare with
// BenchmarkRawUnixRoundTrip, the same dial-and-exchange without banger's
// envelope, measured in the same run.
func BenchmarkCall(b *testing.B) {
	dir, _ := os.MkdirTemp("", "rpcb")
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go (&Server{Methods: testMethods()}).Serve(ctx, ln)
	in := echoParams{Text: "ping"}
	var out echoParams
	b.ResetTimer()
	for b.Loop() {
		if err := Call(context.Background(), sock, "test.echo", in, &out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawUnixRoundTrip is the baseline for BenchmarkCall: connect to
// a unix socket, write one line, read one line back.
func BenchmarkRawUnixRoundTrip(b *testing.B) {
	dir, _ := os.MkdirTemp("", "rpcb")
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, err := bufio.NewReader(c).ReadBytes('\n')
				if err == nil {
					c.Write(line)
				}
			}()
		}
	}()
	msg := []byte(`{"version":1,"method":"test.echo","params":{"text":"ping"}}` + "\n")
	b.ResetTimer()
	for b.Loop() {
		c, err := net.Dial("unix", sock)
		if err != nil {
			b.Fatal(err)
		}
		c.Write(msg)
		if _, err := bufio.NewReader(c).ReadBytes('\n'); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
