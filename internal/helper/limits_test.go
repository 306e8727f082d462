package helper

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"banger/internal/helperapi"
	"banger/internal/rpc"
	"banger/internal/testutil/netns"
)

// floodMain opens n connections (its argument) at once and sends nothing
// on them. A refusal arrives at once; a connection the helper took stays
// silent for the second each is given. It prints "held=H refused=R
// first=<a refusal's message>", holds the rest until stdin is closed,
// then prints "closed=C": how many of them the helper had closed.
func floodMain(sock string, args []string) int {
	n, _ := strconv.Atoi(args[0])
	type outcome struct {
		conn    net.Conn
		refusal string
		err     error
	}
	results := make(chan outcome, n)
	for i := 0; i < n; i++ {
		c, err := net.Dial("unix", sock)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		go func() {
			line, err := bufio.NewReader(c).ReadBytes('\n')
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				results <- outcome{conn: c}
				return
			}
			c.Close()
			var resp rpc.Response
			if json.Unmarshal(line, &resp) != nil || resp.Error == nil || resp.Error.Code != rpc.CodeUnavailable {
				results <- outcome{err: fmt.Errorf("not a refusal: %q, %v", line, err)}
				return
			}
			results <- outcome{refusal: resp.Error.Message}
		}()
	}
	var held []net.Conn
	refused, first := 0, ""
	for i := 0; i < n; i++ {
		switch o := <-results; {
		case o.err != nil:
			fmt.Fprintln(os.Stderr, o.err)
			return 1
		case o.conn != nil:
			held = append(held, o.conn)
		default:
			refused, first = refused+1, o.refusal
		}
	}
	fmt.Printf("held=%d refused=%d first=%s\n", len(held), refused, first)
	io.Copy(io.Discard, os.Stdin)
	closed := 0
	for _, c := range held {
		c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); errors.Is(err, io.EOF) {
			closed++
		}
	}
	fmt.Printf("closed=%d\n", closed)
	return 0
}

// TestConnectionFlood: a uid the helper does not serve opens a thousand
// connections and sends nothing. It holds MaxConnsPerUID of them, the
// rest are refused at once, the allowed uid is served throughout, and
// the silent ones are closed after FirstRequestTimeout.
func TestConnectionFlood(t *testing.T) {
	ns := netns.New(t)
	h := newHelperDir(t, ns, 0)
	h.start()
	const flood = 1000
	cmd := exec.Command(h.exe, strconv.Itoa(flood))
	cmd.Env = append(os.Environ(), envFlood+"="+h.socket)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	start := time.Now()
	out := bufio.NewReader(stdout)
	report, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("flood client: %v", err)
	}
	var held, refused int
	fmt.Sscanf(report, "held=%d refused=%d", &held, &refused)
	if held != MaxConnsPerUID || refused != flood-MaxConnsPerUID {
		t.Errorf("a flood of %d: %d held, %d refused; want %d held", flood, held, refused, MaxConnsPerUID)
	}
	if want := fmt.Sprintf("uid %d holds %d connections", nobody, MaxConnsPerUID); !strings.Contains(report, want) {
		t.Errorf("refusal %q does not say %q", report, want)
	}
	for i := 0; i < 10; i++ {
		var st helperapi.StatusResult
		if err := h.call(fmt.Sprintf("op-0000000010%02d", i), helperapi.MethodStatus, nil, &st); err != nil {
			t.Fatalf("status as root during the flood: %v", err)
		}
	}
	time.Sleep(time.Until(start.Add(FirstRequestTimeout + time.Second)))
	stdin.Close()
	final, _ := out.ReadString('\n')
	if strings.TrimSpace(final) != fmt.Sprintf("closed=%d", MaxConnsPerUID) {
		t.Errorf("after %v the flood client reports %q; want all %d silent connections closed", FirstRequestTimeout+time.Second, final, MaxConnsPerUID)
	}
	if n := len(h.logRecords("helper rpc failed")); n < 1 || n > 5 {
		t.Errorf("%d log lines for a flood of refusals in about a second; want a handful, not one each", n)
	}
}
