package qemu

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// fakeQEMUEnv makes the test binary act as QEMU (see fakeQEMU) when a
// test passes os.Args[0] as the driver's Binary.
const fakeQEMUEnv = "BANGER_TEST_FAKE_QEMU"

func TestMain(m *testing.M) {
	if os.Getenv(fakeQEMUEnv) != "" {
		os.Exit(fakeQEMU(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fakeQEMU is just enough of QEMU for the driver's process handling:
// it writes a line to the console file, serves QMP on the inherited
// descriptor, and exits once system_powerdown has been asked for, as a
// guest that powers off makes QEMU do.
func fakeQEMU(args []string) int {
	for i, a := range args {
		if a == "-chardev" && i+1 < len(args) && strings.HasPrefix(args[i+1], "file,id=console,path=") {
			path := strings.TrimSuffix(strings.TrimPrefix(args[i+1], "file,id=console,path="), ",append=on")
			os.WriteFile(path, []byte("fake guest booting\n"), 0o600)
		}
	}
	fmt.Fprintln(os.Stderr, "fake qemu: up")
	ln, err := net.FileListener(os.NewFile(qmpFD, "qmp"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake qemu:", err)
		return 1
	}
	status := "running"
	for {
		conn, err := ln.Accept()
		if err != nil {
			return 1
		}
		fmt.Fprintf(conn, "%s\r\n", greeting)
		sc := bufio.NewScanner(conn)
		for sc.Scan() {
			var req qmpRequest
			json.Unmarshal(sc.Bytes(), &req)
			switch req.Execute {
			case "stop":
				status = "paused"
			case "cont":
				status = "running"
			case "query-status":
				fmt.Fprintf(conn, "%s\r\n", reply(req, fmt.Sprintf(`{"status": %q, "running": %t}`, status, status == "running")))
				continue
			case "system_powerdown":
				fmt.Fprintf(conn, "%s\r\n%s\r\n", powerdownEvent, reply(req, "{}"))
				time.Sleep(200 * time.Millisecond) // the guest shutting down
				fmt.Fprintln(os.Stderr, "fake qemu: powered off")
				return 0
			}
			fmt.Fprintf(conn, "%s\r\n", reply(req, "{}"))
		}
		conn.Close()
	}
}
