package api

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestDoctorResultFailedAndWarnings(t *testing.T) {
	r := DoctorResult{Checks: []DoctorCheck{
		{Name: "kvm", Status: CheckWarn},
		{Name: "qemu", Status: CheckFail},
		{Name: "ssh", Status: CheckOK},
		{Name: "helper", Status: CheckFail},
	}}
	if got, want := r.Failed(), []DoctorCheck{r.Checks[1], r.Checks[3]}; !reflect.DeepEqual(got, want) {
		t.Errorf("Failed() = %+v, want %+v", got, want)
	}
	if got, want := r.Warnings(), []DoctorCheck{r.Checks[0]}; !reflect.DeepEqual(got, want) {
		t.Errorf("Warnings() = %+v, want %+v", got, want)
	}
	if got := (DoctorResult{}).Failed(); got != nil {
		t.Errorf("Failed() of no checks = %+v", got)
	}
}

// The JSON names are the contract --json users see.
func TestDoctorResultJSON(t *testing.T) {
	r := DoctorResult{
		Checks:  []DoctorCheck{{Name: "kvm", Status: CheckOK, Detail: "KVM"}},
		Choices: DoctorChoices{VMM: "auto", Driver: "qemu", Accel: "kvm", AccelReason: "KVM", OverlayStrategy: "reflink"},
	}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"checks":[{"name":"kvm","status":"ok","detail":"KVM"}],"choices":{"vmm":"auto","driver":"qemu","accel":"kvm","accel_reason":"KVM","overlay_strategy":"reflink"}}`
	if string(data) != want {
		t.Errorf("JSON = %s\nwant   %s", data, want)
	}
}
