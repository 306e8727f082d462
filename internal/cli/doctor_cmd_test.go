package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"banger/internal/api"
	"banger/internal/rpc"
)

// serveFakeDaemon answers daemon.ping (with this CLI's protocol) and, if
// doctor is not nil, daemon.doctor with it, on the socket of a private
// runtime directory, so that banger uses it instead of starting bangerd.
func serveFakeDaemon(t *testing.T, doctor *api.DoctorResult) {
	t.Helper()
	methods := map[string]rpc.Handler{}
	if doctor != nil {
		methods[api.MethodDaemonDoctor] = rpc.Typed(func(context.Context, rpc.NoParams) (api.DoctorResult, error) {
			return *doctor, nil
		})
	}
	serveDaemon(t, methods)
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = Run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

var doctorChoices = api.DoctorChoices{
	VMM: "auto", Driver: "qemu", Accel: "tcg",
	AccelReason:     "TCG (emulation): cannot open /dev/kvm read-write (no such file or directory)",
	OverlayStrategy: "reflink",
}

func TestDoctorFailedCheckExitsOne(t *testing.T) {
	res := api.DoctorResult{
		Checks: []api.DoctorCheck{
			{Name: "kvm", Status: api.CheckWarn, Detail: "TCG (emulation): cannot open /dev/kvm read-write"},
			{Name: "qemu", Status: api.CheckFail, Detail: "qemu-system-x86_64 not found on $PATH"},
			{Name: "helper", Status: api.CheckFail, Detail: "banger-helper is unavailable"},
			{Name: "ssh", Status: api.CheckOK, Detail: "/usr/bin/ssh"},
		},
		Choices: doctorChoices,
	}
	serveFakeDaemon(t, &res)
	code, stdout, stderr := runCLI("doctor")
	if code != exitError {
		t.Errorf("exit %d, want %d (stderr %q)", code, exitError, stderr)
	}
	for _, want := range []string{
		"CHECK   STATUS  DETAIL\n",
		"kvm     warn    TCG (emulation): cannot open /dev/kvm read-write\n",
		"qemu    fail    qemu-system-x86_64 not found on $PATH\n",
		"helper  fail    banger-helper is unavailable\n",
		"ssh     ok      /usr/bin/ssh\n",
		"a VM created now gets\n",
		"  driver   qemu (vmm = auto)\n",
		"  accel    TCG (emulation)\n",
		"  overlay  reflink\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "banger can run VMs") {
		t.Errorf("stdout has the all-clear despite failures:\n%s", stdout)
	}
	if stderr != "banger: 2 checks failed: qemu, helper\n" {
		t.Errorf("stderr = %q", stderr)
	}

	// --json: the result as the daemon sent it on stdout, the failure as
	// a JSON error on stderr, and the same exit status.
	code, stdout, stderr = runCLI("--json", "doctor")
	if code != exitError {
		t.Errorf("--json: exit %d, want %d", code, exitError)
	}
	var got api.DoctorResult
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("--json stdout %q: %v", stdout, err)
	}
	if !reflect.DeepEqual(got, res) {
		t.Errorf("--json result = %+v, want %+v", got, res)
	}
	if !strings.Contains(stderr, `"message": "2 checks failed: qemu, helper"`) {
		t.Errorf("--json stderr = %q", stderr)
	}
}

func TestDoctorWarningsExitZero(t *testing.T) {
	res := api.DoctorResult{
		Checks: []api.DoctorCheck{
			{Name: "kvm", Status: api.CheckOK, Detail: "KVM: /dev/kvm is usable"},
			{Name: "image", Status: api.CheckWarn, Detail: `the default image "default" does not exist yet`},
		},
		Choices: api.DoctorChoices{VMM: "qemu", Driver: "qemu", Accel: "kvm", AccelReason: "KVM: configured", OverlayStrategy: "dm-snapshot"},
	}
	serveFakeDaemon(t, &res)
	code, stdout, stderr := runCLI("doctor")
	if code != exitOK || stderr != "" {
		t.Errorf("exit %d, stderr %q; want 0 and nothing", code, stderr)
	}
	for _, want := range []string{
		"  driver   qemu\n", // configured, so nothing to resolve
		"  accel    KVM (configured)\n",
		"  overlay  dm-snapshot\n",
		"\nbanger can run VMs on this host (1 warning: see above)\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
}

func TestDoctorOlderDaemon(t *testing.T) {
	serveFakeDaemon(t, nil)
	code, _, stderr := runCLI("doctor")
	if code != exitError || !strings.Contains(stderr, "bangerd (pid 4242, version v0.0.0-test) is older than banger and cannot run doctor; stop it with 'banger daemon stop'") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestDescribeAccel(t *testing.T) {
	tests := []struct {
		ch   api.DoctorChoices
		want string
	}{
		{api.DoctorChoices{Accel: "kvm", AccelReason: "KVM: /dev/kvm is usable, the CPU has vmx, kvm_intel is loaded"}, "KVM"},
		{api.DoctorChoices{Accel: "tcg", AccelReason: "TCG (emulation): configured"}, "TCG (emulation) (configured)"},
		{api.DoctorChoices{Accel: "tcg"}, "tcg"},
		{api.DoctorChoices{AccelReason: `qemu accelerator "x": want auto, kvm or tcg`}, `none: qemu accelerator "x": want auto, kvm or tcg`},
	}
	for _, tt := range tests {
		if got := describeAccel(tt.ch); got != tt.want {
			t.Errorf("describeAccel(%+v) = %q, want %q", tt.ch, got, tt.want)
		}
	}
}
