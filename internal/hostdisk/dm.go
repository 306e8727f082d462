package hostdisk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// ErrNotFound is returned when a named device-mapper device does not
// exist.
var ErrNotFound = errors.New("device-mapper device not found")

// ChunkSectors is the snapshot's copy-on-write granularity: 4 KiB, the
// guest file system's block.
const ChunkSectors = 8

// dmsetupTimeout bounds each dmsetup run; with udev it waits for udev to
// finish with the device.
const dmsetupTimeout = 30 * time.Second

// DMAvailable says whether device-mapper can be used here: dmsetup is
// installed and reaches the kernel's driver. detail says which driver,
// or why not, in words for `banger doctor`.
func DMAvailable(ctx context.Context) (ok bool, detail string) {
	if _, err := exec.LookPath("dmsetup"); err != nil {
		return false, "dmsetup is not installed (Debian: apt-get install dmsetup)"
	}
	out, err := dmsetup(ctx, "version")
	if err != nil {
		if misc, rerr := os.ReadFile("/proc/misc"); rerr == nil && !bytes.Contains(misc, []byte("device-mapper")) {
			return false, "the kernel has no device-mapper (not in /proc/misc; modprobe dm_mod, or a kernel with CONFIG_BLK_DEV_DM)"
		}
		return false, "dmsetup cannot reach the kernel's device-mapper: " + firstLine(err.Error())
	}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "Driver version:"); ok {
			return true, "device-mapper driver " + strings.TrimSpace(v)
		}
	}
	return true, "device-mapper available"
}

// SnapshotTable is the device-mapper table of a persistent snapshot of
// origin (sectors long) whose changes go to cow; both "major:minor".
// Persistent (P): the copy-on-write store keeps its changes across
// removal and re-creation, so a stopped VM starts with what it wrote.
func SnapshotTable(sectors uint64, origin, cow string) string {
	return fmt.Sprintf("0 %d snapshot %s %s P %d", sectors, origin, cow, ChunkSectors)
}

// CreateSnapshot creates the snapshot device name over the open origin
// and cow block devices, gives its node to uid (mode 0600) so the user's
// VMM can open it, and returns the node's path.
func CreateSnapshot(ctx context.Context, name string, origin, cow *os.File, uid uint32) (string, error) {
	sectors, err := Sectors(origin)
	if err != nil {
		return "", err
	}
	originNum, err := DevNumber(origin)
	if err != nil {
		return "", err
	}
	cowNum, err := DevNumber(cow)
	if err != nil {
		return "", err
	}
	if _, err := dmsetup(ctx, "create", name, "--table", SnapshotTable(sectors, originNum, cowNum)); err != nil {
		return "", fmt.Errorf("create dm-snapshot %s: %w", name, err)
	}
	path := "/dev/mapper/" + name
	// dmsetup waits for udev when udev runs, so its rules have been
	// applied and the owner set here stays.
	err = os.Chown(path, int(uid), -1)
	if err == nil {
		err = os.Chmod(path, 0o600)
	}
	if err != nil {
		return "", errors.Join(fmt.Errorf("give %s to uid %d: %w", path, uid, err), RemoveDM(ctx, name))
	}
	return path, nil
}

// RemoveDM removes the device-mapper device name. ErrNotFound when it
// does not exist. A device still open (a VMM running on it) is an error.
func RemoveDM(ctx context.Context, name string) error {
	exists, err := DMExists(ctx, name)
	if err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("remove %s: %w", name, ErrNotFound)
	}
	if _, err := dmsetup(ctx, "remove", "--retry", name); err != nil {
		return fmt.Errorf("remove dm device %s: %w", name, err)
	}
	return nil
}

// DMExists reports whether a device-mapper device of that name exists.
func DMExists(ctx context.Context, name string) (bool, error) {
	names, err := ListDM(ctx, name)
	if err != nil {
		return false, err
	}
	for _, n := range names {
		if n == name {
			return true, nil
		}
	}
	return false, nil
}

// ListDM returns the names of the device-mapper devices starting with
// prefix.
func ListDM(ctx context.Context, prefix string) ([]string, error) {
	out, err := dmsetup(ctx, "ls")
	if err != nil {
		return nil, fmt.Errorf("list dm devices: %w", err)
	}
	return parseDMList(out, prefix), nil
}

// parseDMList reads `dmsetup ls`: "name\t(253:0)" per line, or "No
// devices found".
func parseDMList(out, prefix string) []string {
	var names []string
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) != 2 || !strings.HasPrefix(fields[1], "(") {
			continue
		}
		if strings.HasPrefix(fields[0], prefix) {
			names = append(names, fields[0])
		}
	}
	return names
}

func dmsetup(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, dmsetupTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "dmsetup", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("dmsetup %s: %s", args[0], msg)
	}
	return stdout.String(), nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
