package fcdouble

import (
	"encoding/json"
	"net"
	"os"
	"strings"
)

// vmConfig is the configuration so far, in Firecracker's JSON shapes.
type vmConfig struct {
	Boot    *bootSource
	Machine machineConfig
	Drives  []drive // in insertion order
	Ifaces  []netIface
	Vsock   *vsockConfig
	Logger  *loggerConfig
	Metrics *metricsConfig
}

type bootSource struct {
	KernelImagePath string `json:"kernel_image_path"`
	InitrdPath      string `json:"initrd_path,omitempty"`
	BootArgs        string `json:"boot_args,omitempty"`
}

type machineConfig struct {
	VCPUCount       int    `json:"vcpu_count"`
	MemSizeMib      int    `json:"mem_size_mib"`
	SMT             bool   `json:"smt"`
	TrackDirtyPages bool   `json:"track_dirty_pages"`
	HugePages       string `json:"huge_pages,omitempty"`
}

type drive struct {
	DriveID      string `json:"drive_id"`
	PathOnHost   string `json:"path_on_host,omitempty"`
	IsRootDevice bool   `json:"is_root_device"`
	IsReadOnly   bool   `json:"is_read_only"`
	CacheType    string `json:"cache_type,omitempty"`
	IOEngine     string `json:"io_engine,omitempty"`
	PartUUID     string `json:"partuuid,omitempty"`
	Socket       string `json:"socket,omitempty"`
}

type netIface struct {
	IfaceID     string `json:"iface_id"`
	HostDevName string `json:"host_dev_name"`
	GuestMAC    string `json:"guest_mac,omitempty"`
}

type vsockConfig struct {
	GuestCID uint32 `json:"guest_cid"`
	UDSPath  string `json:"uds_path"`
}

type loggerConfig struct {
	LogPath       string `json:"log_path,omitempty"`
	Level         string `json:"level,omitempty"`
	ShowLevel     bool   `json:"show_level,omitempty"`
	ShowLogOrigin bool   `json:"show_log_origin,omitempty"`
	Module        string `json:"module,omitempty"`
}

type metricsConfig struct {
	MetricsPath string `json:"metrics_path"`
}

func (d *Double) getMachineConfig(map[string]string, []byte) (int, []byte, error) {
	return jsonBody(d.vm.Machine)
}

func (d *Double) getVMConfig(map[string]string, []byte) (int, []byte, error) {
	drives := d.vm.Drives
	if drives == nil {
		drives = []drive{}
	}
	ifaces := d.vm.Ifaces
	if ifaces == nil {
		ifaces = []netIface{}
	}
	return jsonBody(map[string]any{
		"boot-source": d.vm.Boot, "machine-config": d.vm.Machine, "drives": drives,
		"network-interfaces": ifaces, "vsock": d.vm.Vsock, "logger": d.vm.Logger, "metrics": d.vm.Metrics,
	})
}

// openExisting opens a file that must already exist, for appending, as
// Firecracker opens its logger and metrics destinations.
func openExisting(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
}

func (d *Double) putLogger(_ map[string]string, body []byte) (int, []byte, error) {
	var c loggerConfig
	json.Unmarshal(body, &c)
	lvl := levelInfo
	if c.Level != "" {
		lvl = parseLevel(c.Level)
	}
	if c.LogPath != "" {
		f, err := openExisting(c.LogPath)
		if err != nil {
			return 0, nil, faultf("Logger error: Failed to open target file: %s", osErr(err))
		}
		d.logger.setFile(f)
	}
	d.logger.configure(lvl, c.ShowLevel, c.ShowLogOrigin)
	d.vm.Logger = &c
	d.logger.log(levelInfo, "API server received a logger configuration")
	return noContent()
}

func (d *Double) putMetrics(_ map[string]string, body []byte) (int, []byte, error) {
	var c metricsConfig
	json.Unmarshal(body, &c)
	if d.metrics != nil {
		return 0, nil, faultf("Metrics error: Reinitialization of metrics not allowed.")
	}
	f, err := openExisting(c.MetricsPath)
	if err != nil {
		return 0, nil, faultf("Metrics error: Failed to open target file: %s", osErr(err))
	}
	d.metrics = newMetricsWriter(f, d)
	d.vm.Metrics = &c
	go d.metrics.tick(d.cfg.MetricsTick)
	return noContent()
}

func (d *Double) putMachineConfig(_ map[string]string, body []byte) (int, []byte, error) {
	var c machineConfig
	json.Unmarshal(body, &c)
	if c.MemSizeMib == 0 {
		return 0, nil, faultf("The memory size (MiB) is either 0, or not a multiple of the configured page size.")
	}
	if c.SMT && c.VCPUCount > 1 && c.VCPUCount%2 == 1 {
		return 0, nil, faultf("The number of vCPUs must be 1 or an even number when SMT is enabled.")
	}
	d.vm.Machine = c
	return noContent()
}

func (d *Double) putBootSource(_ map[string]string, body []byte) (int, []byte, error) {
	var c bootSource
	json.Unmarshal(body, &c)
	f, err := os.Open(c.KernelImagePath)
	if err != nil {
		return 0, nil, faultf("Boot source error: The kernel file cannot be opened: %s", osErr(err))
	}
	f.Close()
	if c.InitrdPath != "" {
		f, err := os.Open(c.InitrdPath)
		if err != nil {
			return 0, nil, faultf("Boot source error: The initrd file cannot be opened due to invalid path or invalid permissions. %s", osErr(err))
		}
		f.Close()
	}
	d.vm.Boot = &c
	return noContent()
}

func (d *Double) putDrive(params map[string]string, body []byte) (int, []byte, error) {
	var c drive
	json.Unmarshal(body, &c)
	if c.DriveID != params["drive_id"] {
		return 0, nil, faultf("The id from the path [%s] does not match the id from the body [%s]!", params["drive_id"], c.DriveID)
	}
	if c.Socket != "" {
		return 0, nil, faultf("the Firecracker test double does not implement vhost-user block devices")
	}
	if c.PathOnHost == "" {
		return 0, nil, faultf("Unable to create the block device: path_on_host is required for a virtio block device")
	}
	flag := os.O_RDWR
	if c.IsReadOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(c.PathOnHost, flag, 0)
	if err != nil {
		return 0, nil, faultf("Unable to create the block device: VirtioBlock(BackingFile(%s, %q))", osErr(err), c.PathOnHost)
	}
	f.Close()
	i := -1
	for j, dr := range d.vm.Drives {
		if dr.DriveID == c.DriveID {
			i = j
		} else if dr.IsRootDevice && c.IsRootDevice {
			return 0, nil, faultf("A root block device already exists!")
		}
	}
	if i >= 0 {
		d.vm.Drives[i] = c
	} else {
		d.vm.Drives = append(d.vm.Drives, c)
	}
	return noContent()
}

func (d *Double) putIface(params map[string]string, body []byte) (int, []byte, error) {
	var c netIface
	json.Unmarshal(body, &c)
	if c.IfaceID != params["iface_id"] {
		return 0, nil, faultf("The id from the path [%s] does not match the id from the body [%s]!", params["iface_id"], c.IfaceID)
	}
	if c.GuestMAC != "" {
		if hw, err := net.ParseMAC(c.GuestMAC); err != nil || len(hw) != 6 {
			return 0, nil, faultf("An error occurred when deserializing the json body of a request: invalid MAC address %q", c.GuestMAC)
		}
	}
	for _, o := range d.vm.Ifaces {
		if o.IfaceID == c.IfaceID {
			continue
		}
		if o.HostDevName == c.HostDevName {
			return 0, nil, faultf("Could not create the network device: The host device name %s is already in use.", c.HostDevName)
		}
		if c.GuestMAC != "" && strings.EqualFold(o.GuestMAC, c.GuestMAC) {
			return 0, nil, faultf("Could not create the network device: The guest MAC address %s is already in use.", c.GuestMAC)
		}
	}
	if err := probeTap(c.HostDevName); err != nil {
		return 0, nil, faultf("Could not create the network device: Open tap device failed: %v", err)
	}
	replaced := false
	for i, o := range d.vm.Ifaces {
		if o.IfaceID == c.IfaceID {
			d.vm.Ifaces[i], replaced = c, true
		}
	}
	if !replaced {
		d.vm.Ifaces = append(d.vm.Ifaces, c)
	}
	return noContent()
}

func (d *Double) putVsock(_ map[string]string, body []byte) (int, []byte, error) {
	var c vsockConfig
	json.Unmarshal(body, &c)
	if d.vsock != nil {
		d.vsock.Close()
		d.vsock = nil
	}
	p, err := listenVsock(c.UDSPath, c.GuestCID, d.logger)
	if err != nil {
		return 0, nil, faultf("Cannot create backend for vsock device: Error binding to the host-side Unix socket: %s", osErr(err))
	}
	d.vsock = p
	d.vm.Vsock = &c
	return noContent()
}
