package api

// Check statuses of daemon.doctor.
const (
	// CheckOK: this part of the host is ready.
	CheckOK = "ok"
	// CheckWarn: banger works, but slower or with less than it could;
	// the detail says what to do about it.
	CheckWarn = "warn"
	// CheckFail: banger cannot run VMs until this is fixed.
	CheckFail = "fail"
)

// DoctorCheck is one line of `banger doctor`: what was checked, how it
// went (CheckOK, CheckWarn or CheckFail) and, in words, what was found
// and what to do when it is not ok.
type DoctorCheck struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail"`
}

// DoctorChoices is what bangerd would pick for a VM created now.
type DoctorChoices struct {
	// VMM is the configured driver choice (auto, firecracker, qemu);
	// Driver is what it resolves to, "" when it resolves to none.
	VMM    string `json:"vmm"`
	Driver string `json:"driver"`
	// Accel is QEMU's accelerator (kvm or tcg) and AccelReason why.
	Accel       string `json:"accel"`
	AccelReason string `json:"accel_reason"`
	// OverlayStrategy is how a VM's system overlay would be made:
	// dm-snapshot, reflink or copy.
	OverlayStrategy string `json:"overlay_strategy"`
}

// DoctorResult answers daemon.doctor: the checks, always in the same
// order, and the choices they lead to.
type DoctorResult struct {
	Checks  []DoctorCheck `json:"checks"`
	Choices DoctorChoices `json:"choices"`
}

// Failed returns the checks whose status is CheckFail.
func (r DoctorResult) Failed() []DoctorCheck {
	return r.withStatus(CheckFail)
}

// Warnings returns the checks whose status is CheckWarn.
func (r DoctorResult) Warnings() []DoctorCheck {
	return r.withStatus(CheckWarn)
}

func (r DoctorResult) withStatus(status string) []DoctorCheck {
	var out []DoctorCheck
	for _, c := range r.Checks {
		if c.Status == status {
			out = append(out, c)
		}
	}
	return out
}
