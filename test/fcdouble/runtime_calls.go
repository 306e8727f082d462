package fcdouble

import (
	"encoding/json"
	"fmt"
)

func (d *Double) instanceStart(map[string]string, []byte) (int, []byte, error) {
	if d.vm.Boot == nil {
		return 0, nil, faultf("Start microvm error: Cannot start microvm without kernel configuration.")
	}
	roots := 0
	for _, dr := range d.vm.Drives {
		if dr.IsRootDevice {
			roots++
		}
	}
	if roots > 1 {
		return 0, nil, faultf("Start microvm error: A root block device already exists!")
	}
	if err := checkELF(d.vm.Boot.KernelImagePath); err != nil {
		return 0, nil, faultf("Start microvm error: Cannot load kernel due to invalid memory configuration or invalid kernel image: %v", err)
	}
	m, err := startMachine(d.cfg.QEMU, d.vm, d.logger)
	if err != nil {
		return 0, nil, faultf("Start microvm error: %v", err)
	}
	d.machine = m
	d.started = true
	if d.vsock != nil {
		d.vsock.setReady()
	}
	d.logger.log(levelInfo, "Successfully started microvm that was configured from one single json")
	go d.watchMachine(m)
	return noContent()
}

// watchMachine ends the process's life with the guest's: Firecracker
// exits when its guest powers off or resets.
func (d *Double) watchMachine(m *machine) {
	code := m.wait()
	d.mu.Lock()
	if d.metrics != nil {
		d.metrics.write()
	}
	d.logger.log(levelInfo, fmt.Sprintf("Vmm is stopping. (guest exit, qemu %s)", m.exitDesc))
	d.ExitCode = code
	d.mu.Unlock()
	close(d.Exited)
}

func (d *Double) sendCtrlAltDel(map[string]string, []byte) (int, []byte, error) {
	if err := d.machine.ctrlAltDel(); err != nil {
		return 0, nil, faultf("Internal error while executing an action: %v", err)
	}
	d.logger.log(levelInfo, "Sent Ctrl+Alt+Del to the guest")
	return noContent()
}

func (d *Double) flushMetrics(map[string]string, []byte) (int, []byte, error) {
	if d.metrics == nil {
		return 0, nil, faultf("Metrics error: The metrics system was not initialized.")
	}
	d.metrics.write()
	return noContent()
}

func (d *Double) patchVM(_ map[string]string, body []byte) (int, []byte, error) {
	var c struct {
		State string `json:"state"`
	}
	json.Unmarshal(body, &c)
	if err := d.machine.setPaused(c.State == "Paused"); err != nil {
		return 0, nil, faultf("Internal error while executing an action: %v", err)
	}
	return noContent()
}

func (d *Double) patchDrive(params map[string]string, body []byte) (int, []byte, error) {
	var c struct {
		DriveID    string `json:"drive_id"`
		PathOnHost string `json:"path_on_host"`
	}
	json.Unmarshal(body, &c)
	if c.DriveID != params["drive_id"] {
		return 0, nil, faultf("The id from the path [%s] does not match the id from the body [%s]!", params["drive_id"], c.DriveID)
	}
	for _, dr := range d.vm.Drives {
		if dr.DriveID == c.DriveID {
			if c.PathOnHost != "" {
				return 0, nil, faultf("the Firecracker test double does not implement swapping a drive's backing file")
			}
			return noContent()
		}
	}
	return 0, nil, faultf("Unable to patch the block device: Invalid block device ID: %s", c.DriveID)
}

func (d *Double) patchIface(params map[string]string, body []byte) (int, []byte, error) {
	var c struct {
		IfaceID string `json:"iface_id"`
	}
	json.Unmarshal(body, &c)
	if c.IfaceID != params["iface_id"] {
		return 0, nil, faultf("The id from the path [%s] does not match the id from the body [%s]!", params["iface_id"], c.IfaceID)
	}
	for _, o := range d.vm.Ifaces {
		if o.IfaceID == c.IfaceID {
			return noContent()
		}
	}
	return 0, nil, faultf("Unable to update the net device: Invalid network interface ID: %s", c.IfaceID)
}
