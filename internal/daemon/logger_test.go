package daemon

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
			_, got, err := parseLogLevel(tt.raw)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "use debug, info, warn, or error") || !strings.Contains(err.Error(), tt.raw) {
					t.Fatalf("parseLogLevel(%q) error = %v, want one naming the value and the allowed levels", tt.raw, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseLogLevel(%q) = %q, %v; want %q", tt.raw, got, err, tt.want)
			}
		})
	}
}

func TestOperationLogRecords(t *testing.T) {
	var buf bytes.Buffer
	logger, level, err := newDaemonLogger(&buf, "info")
	if err != nil || level != "info" {
		t.Fatalf("newDaemonLogger: %v %q", err, level)
	}
	d := &Daemon{logger: logger}
	ctx := WithOpID(context.Background(), "op-abcdefabcdef")
	if got := OpIDFromContext(ctx); got != "op-abcdefabcdef" {
		t.Fatalf("OpIDFromContext = %q", got)
	}

	op := d.beginOperation(ctx, "vm.start", "vm_name", "dev")
	if op.OpID() != "op-abcdefabcdef" {
		t.Errorf("OpID() = %q", op.OpID())
	}
	time.Sleep(5 * time.Millisecond)
	op.stage("boot", "pid", 42)
	op.debugStage("poll") // below info: not written
	time.Sleep(5 * time.Millisecond)
	op.stage("ssh")
	op.done("ip", "172.16.0.2")
	if op.fail(nil) != nil {
		t.Error("fail(nil) returned an error")
	}
	boom := errors.New("tap busy")
	if got := d.beginOperation(ctx, "vm.stop").fail(boom); got != boom {
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
	logger, level, err := newDaemonLogger(&buf, "DEBUG")
	if err != nil || level != "debug" {
		t.Fatalf("newDaemonLogger: %v %q", err, level)
	}
	d := &Daemon{logger: logger}
	d.beginOperation(context.Background(), "image.build").debugStage("unpack", "files", 3)
	recs := records(t, &buf)
	if len(recs) != 2 || recs[1]["stage"] != "unpack" || recs[1]["level"] != "DEBUG" {
		t.Fatalf("records = %v", recs)
	}
	if _, ok := recs[0]["op_id"]; ok {
		t.Errorf("an operation without an op id on its context logged one: %v", recs[0])
	}
	if _, _, err := newDaemonLogger(&buf, "verbose"); err == nil {
		t.Error("newDaemonLogger accepted log level verbose")
	}
}

func TestOperationLogWithoutLogger(t *testing.T) {
	op := (&Daemon{}).beginOperation(context.Background(), "x")
	op.stage("a")
	op.done()
	if op.fail(errors.New("e")) == nil {
		t.Error("fail without a logger lost the error")
	}
	var nilOp *operationLog
	if nilOp.OpID() != "" {
		t.Error("nil operationLog has an op id")
	}
}

func TestLogAttrs(t *testing.T) {
	vm := model.VMRecord{ID: "v1", Name: "dev", ImageID: "i1"}
	if got := vmLogAttrs(vm); len(got) != 6 {
		t.Errorf("vmLogAttrs without runtime = %v", got)
	}
	vm.Runtime = model.VMRuntime{GuestIP: "172.16.0.2", APISockPath: "/x/api.sock", LogPath: "/x/console.log"}
	got := vmLogAttrs(vm)
	want := []any{"vm_id", "v1", "vm_name", "dev", "image_id", "i1", "guest_ip", "172.16.0.2", "api_socket", "/x/api.sock", "log_path", "/x/console.log"}
	if len(got) != len(want) {
		t.Fatalf("vmLogAttrs = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("vmLogAttrs[%d] = %v, want %v", i, got[i], want[i])
		}
	}

	img := model.Image{ID: "i1", Name: "default", ArtifactDir: "/a", RootfsPath: "/a/rootfs.ext4", WorkSeedPath: "/a/work-seed"}
	gotImg := imageLogAttrs(img)
	wantImg := []any{"image_id", "i1", "image_name", "default", "artifact_dir", "/a", "rootfs_path", "/a/rootfs.ext4", "work_seed_path", "/a/work-seed"}
	if len(gotImg) != len(wantImg) {
		t.Fatalf("imageLogAttrs = %v", gotImg)
	}
	for i := range wantImg {
		if gotImg[i] != wantImg[i] {
			t.Errorf("imageLogAttrs[%d] = %v, want %v", i, gotImg[i], wantImg[i])
		}
	}
	if got := imageLogAttrs(model.Image{ID: "i", Name: "n"}); len(got) != 4 {
		t.Errorf("imageLogAttrs of a bare image = %v", got)
	}
}

func TestAnnotateLogPath(t *testing.T) {
	base := errors.New("boot failed")
	if got := annotateLogPath(nil, "/x"); got != nil {
		t.Errorf("annotateLogPath(nil) = %v", got)
	}
	if got := annotateLogPath(base, "  "); got != base {
		t.Errorf("annotateLogPath without a path = %v", got)
	}
	got := annotateLogPath(base, "/vms/dev/console.log")
	if got.Error() != "boot failed; inspect /vms/dev/console.log" || !errors.Is(got, base) {
		t.Errorf("annotateLogPath = %v", got)
	}
}
