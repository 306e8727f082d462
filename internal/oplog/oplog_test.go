package oplog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"banger/internal/model"
	"banger/internal/opid"
)

// records decodes the JSON lines a logger wrote.
func records(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(buf)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, rec)
	}
	return out
}

func TestParseLogLevel(t *testing.T) {
	tests := []struct {
		raw, want string
		wantErr   bool
	}{
		{"", "info", false},
		{"info", "info", false},
		{"INFO", "info", false},
		{" debug ", "debug", false},
		{"warn", "warn", false},
		{"Warning", "warn", false},
		{"error", "error", false},
		{"trace", "", true},
		{"fatal", "", true},
		{"1", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			_, got, err := ParseLevel(tt.raw)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "use debug, info, warn, or error") || !strings.Contains(err.Error(), tt.raw) {
					t.Fatalf("ParseLevel(%q) error = %v, want one naming the value and the allowed levels", tt.raw, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseLevel(%q) = %q, %v; want %q", tt.raw, got, err, tt.want)
			}
		})
	}
}

func TestOperationLogRecords(t *testing.T) {
	var buf bytes.Buffer
	logger, level, err := NewLogger(&buf, "info")
	if err != nil || level != "info" {
		t.Fatalf("newDaemonLogger: %v %q", err, level)
	}
	ctx := opid.With(context.Background(), "op-abcdefabcdef")
	op := Begin(ctx, logger, "vm.start", "vm_name", "dev")
	if op.OpID() != "op-abcdefabcdef" {
		t.Errorf("OpID() = %q", op.OpID())
	}
	time.Sleep(5 * time.Millisecond)
	op.Stage("boot", "pid", 42)
	op.DebugStage("poll") // below info: not written
	time.Sleep(5 * time.Millisecond)
	op.Stage("ssh")
	op.Done("ip", "172.16.0.2")
	if op.Fail(nil) != nil {
		t.Error("fail(nil) returned an error")
	}
	boom := errors.New("tap busy")
	if got := Begin(ctx, logger, "vm.stop").Fail(boom); got != boom {
		t.Errorf("fail returned %v, want the same error", got)
	}

	recs := records(t, &buf)
	wantMsgs := []string{"operation started", "operation stage", "operation stage", "operation completed", "operation started", "operation failed"}
	if len(recs) != len(wantMsgs) {
		t.Fatalf("got %d records, want %d: %v", len(recs), len(wantMsgs), recs)
	}
	for i, rec := range recs {
		if rec["msg"] != wantMsgs[i] {
			t.Errorf("record %d msg = %v, want %s", i, rec["msg"], wantMsgs[i])
		}
		if rec["op_id"] != "op-abcdefabcdef" {
			t.Errorf("record %d op_id = %v", i, rec["op_id"])
		}
	}
	if recs[0]["operation"] != "vm.start" || recs[0]["vm_name"] != "dev" {
		t.Errorf("start record = %v", recs[0])
	}
	boot, ssh := recs[1], recs[2]
	if boot["stage"] != "boot" || boot["pid"] != float64(42) || boot["vm_name"] != "dev" {
		t.Errorf("boot stage record = %v", boot)
	}
	if boot["since_start_ms"].(float64) < 5 || boot["since_last_stage_ms"].(float64) < 5 {
		t.Errorf("boot stage timings = %v", boot)
	}
	// since_last_stage_ms of "ssh" counts from "boot", and the debug
	// stage in between moved the mark too.
	if ssh["since_last_stage_ms"].(float64) > ssh["since_start_ms"].(float64) {
		t.Errorf("ssh stage timings = %v", ssh)
	}
	if recs[3]["duration_ms"].(float64) < 10 || recs[3]["ip"] != "172.16.0.2" {
		t.Errorf("completed record = %v", recs[3])
	}
	if recs[5]["level"] != "ERROR" || recs[5]["error"] != "tap busy" || recs[5]["operation"] != "vm.stop" {
		t.Errorf("failed record = %v", recs[5])
	}
}

func TestDebugStageAtDebugLevel(t *testing.T) {
	var buf bytes.Buffer
	logger, level, err := NewLogger(&buf, "DEBUG")
	if err != nil || level != "debug" {
		t.Fatalf("newDaemonLogger: %v %q", err, level)
	}
	Begin(context.Background(), logger, "image.build").DebugStage("unpack", "files", 3)
	recs := records(t, &buf)
	if len(recs) != 2 || recs[1]["stage"] != "unpack" || recs[1]["level"] != "DEBUG" {
		t.Fatalf("records = %v", recs)
	}
	if _, ok := recs[0]["op_id"]; ok {
		t.Errorf("an operation without an op id on its context logged one: %v", recs[0])
	}
	if _, _, err := NewLogger(&buf, "verbose"); err == nil {
		t.Error("newDaemonLogger accepted log level verbose")
	}
}

func TestOperationLogWithoutLogger(t *testing.T) {
	op := Begin(context.Background(), nil, "x")
	op.Stage("a")
	op.Done()
	if op.Fail(errors.New("e")) == nil {
		t.Error("fail without a logger lost the error")
	}
	var nilOp *Log
	if nilOp.OpID() != "" {
		t.Error("nil Log has an op id")
	}
}

func TestLogAttrs(t *testing.T) {
	vm := model.VMRecord{ID: "v1", Name: "dev", ImageID: "i1"}
	if got := VMAttrs(vm); len(got) != 6 {
		t.Errorf("VMAttrs without runtime = %v", got)
	}
	vm.Runtime = model.VMRuntime{GuestIP: "172.16.0.2", APISockPath: "/x/api.sock", LogPath: "/x/console.log"}
	got := VMAttrs(vm)
	want := []any{"vm_id", "v1", "vm_name", "dev", "image_id", "i1", "guest_ip", "172.16.0.2", "api_socket", "/x/api.sock", "log_path", "/x/console.log"}
	if len(got) != len(want) {
		t.Fatalf("VMAttrs = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("VMAttrs[%d] = %v, want %v", i, got[i], want[i])
		}
	}

	img := model.Image{ID: "i1", Name: "default", ArtifactDir: "/a", RootfsPath: "/a/rootfs.ext4", WorkSeedPath: "/a/work-seed"}
	gotImg := ImageAttrs(img)
	wantImg := []any{"image_id", "i1", "image_name", "default", "artifact_dir", "/a", "rootfs_path", "/a/rootfs.ext4", "work_seed_path", "/a/work-seed"}
	if len(gotImg) != len(wantImg) {
		t.Fatalf("ImageAttrs = %v", gotImg)
	}
	for i := range wantImg {
		if gotImg[i] != wantImg[i] {
			t.Errorf("ImageAttrs[%d] = %v, want %v", i, gotImg[i], wantImg[i])
		}
	}
	if got := ImageAttrs(model.Image{ID: "i", Name: "n"}); len(got) != 4 {
		t.Errorf("ImageAttrs of a bare image = %v", got)
	}
}

func TestAnnotateLogPath(t *testing.T) {
	base := errors.New("boot failed")
	if got := AnnotateLogPath(nil, "/x"); got != nil {
		t.Errorf("AnnotateLogPath(nil) = %v", got)
	}
	if got := AnnotateLogPath(base, "  "); got != base {
		t.Errorf("AnnotateLogPath without a path = %v", got)
	}
	got := AnnotateLogPath(base, "/vms/dev/console.log")
	if got.Error() != "boot failed; inspect /vms/dev/console.log" || !errors.Is(got, base) {
		t.Errorf("AnnotateLogPath = %v", got)
	}
}

// TestContextOpID: any record written under a context with an op id
// carries it, first, unless it names one itself.
func TestContextOpID(t *testing.T) {
	var buf bytes.Buffer
	logger, _, err := NewLogger(&buf, "info")
	if err != nil {
		t.Fatal(err)
	}
	ctx := opid.With(context.Background(), "op-0000000000aa")
	logger.InfoContext(ctx, "vmm started", "pid", 7)
	logger.InfoContext(ctx, "explicit", "op_id", "op-0000000000bb")
	logger.With("component", "x").InfoContext(ctx, "with attrs")
	logger.Info("no context")
	recs := records(t, &buf)
	if len(recs) != 4 {
		t.Fatalf("records = %v", recs)
	}
	if recs[0]["op_id"] != "op-0000000000aa" || recs[0]["pid"] != float64(7) {
		t.Errorf("record = %v", recs[0])
	}
	if recs[1]["op_id"] != "op-0000000000bb" {
		t.Errorf("explicit op id replaced: %v", recs[1])
	}
	if recs[2]["op_id"] != "op-0000000000aa" || recs[2]["component"] != "x" {
		t.Errorf("record of a derived logger = %v", recs[2])
	}
	if _, ok := recs[3]["op_id"]; ok {
		t.Errorf("a record without context has an op id: %v", recs[3])
	}
}
