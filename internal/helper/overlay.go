package helper

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"banger/internal/errdefs"
	"banger/internal/helperapi"
	"banger/internal/hostdisk"
	"banger/internal/model"
	"banger/internal/rpc"
)

// overlayRecord is a dm-snapshot the helper built for a uid. Loop devices
// under it are attached with autoclear, so removing the dm device
// releases them; they are recorded for status and the VM's handles.
type overlayRecord struct {
	Name      string    `json:"name"`
	UID       uint32    `json:"uid"`
	VMID      string    `json:"vm_id"`
	DMDev     string    `json:"dm_dev,omitempty"`
	BaseLoop  string    `json:"base_loop,omitempty"`
	COWLoop   string    `json:"cow_loop,omitempty"`
	Ready     bool      `json:"ready"`
	CreatedAt time.Time `json:"created_at"`
}

// checkVMID accepts what banger uses as VM ids: lower-case hex, so a dm
// name never carries anything odd.
func checkVMID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("vm id %q: want 1 to 64 hex digits: %w", id, errdefs.ErrInvalidArgument)
	}
	for _, c := range id {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("vm id %q: want lower-case hex digits: %w", id, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// checkOverlayFile checks one file passed for an overlay. The open
// descriptor is the caller's only proof of access, so it must prove
// exactly what the role needs and no less: opened for real (not O_PATH,
// which proves nothing about reading or writing), read-only for the
// image (so it cannot be written through the loop device), read-write
// and not append-only for the copy-on-write store; a regular file (not a
// device, FIFO, socket or directory) of a whole, non-zero number of
// 512-byte sectors. The copy-on-write store must also be the caller's
// own; the image may be any file the caller could open (a registered
// image may be root's). It returns the file's identity and size.
func checkOverlayFile(f *os.File, role string, uid uint32, write bool) (unix.Stat_t, error) {
	var st unix.Stat_t
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		return st, fmt.Errorf("%s file: %w", role, err)
	}
	if fl&unix.O_PATH != 0 {
		return st, fmt.Errorf("%s file is an O_PATH descriptor, which proves no right to read or write it; open it %s: %w",
			role, map[bool]string{true: "read-write", false: "read-only"}[write], errdefs.ErrInvalidArgument)
	}
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return st, fmt.Errorf("%s file: %w", role, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return st, fmt.Errorf("%s file is a %s, not a regular file: %w", role, fileKind(st.Mode), errdefs.ErrInvalidArgument)
	}
	if write && st.Uid != uid {
		return st, fmt.Errorf("%s file belongs to uid %d, not the caller (%d): %w", role, st.Uid, uid, errdefs.ErrUnauthorized)
	}
	switch acc := fl & unix.O_ACCMODE; {
	case write && acc != unix.O_RDWR:
		return st, fmt.Errorf("%s file must be open read-write: %w", role, errdefs.ErrInvalidArgument)
	case write && fl&unix.O_APPEND != 0:
		return st, fmt.Errorf("%s file is open O_APPEND; the snapshot writes in place, open it read-write without it: %w", role, errdefs.ErrInvalidArgument)
	case !write && acc != unix.O_RDONLY:
		return st, fmt.Errorf("%s file must be open read-only, so the image cannot be written through it: %w", role, errdefs.ErrInvalidArgument)
	}
	if st.Size <= 0 || st.Size%512 != 0 {
		return st, fmt.Errorf("%s file is %d bytes, not a whole non-zero number of 512-byte sectors: %w", role, st.Size, errdefs.ErrInvalidArgument)
	}
	return st, nil
}

// fileKind names a file type for an error.
func fileKind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFCHR:
		return "character device"
	case unix.S_IFBLK:
		return "block device"
	case unix.S_IFIFO:
		return "FIFO"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFLNK:
		return "symlink"
	}
	return "file of unknown type"
}

// dmAvailable asks once per helper lifetime whether device-mapper works,
// and again while it does not (a module may be loaded meanwhile).
func (h *Helper) dmAvailable(ctx context.Context) (bool, string) {
	if h.dmOK {
		return true, h.dmDetail
	}
	ok, detail := hostdisk.DMAvailable(ctx)
	h.dmOK, h.dmDetail = ok, detail
	return ok, detail
}

func (h *Helper) attachOverlay(ctx context.Context, p helperapi.OverlayAttachParams) (helperapi.OverlayInfo, error) {
	uid := peerUID(ctx)
	if err := checkVMID(p.VMID); err != nil {
		return helperapi.OverlayInfo{}, err
	}
	files := rpc.FilesFromContext(ctx)
	if len(files) != 2 {
		return helperapi.OverlayInfo{}, fmt.Errorf("overlay.attach takes two open files (image, copy-on-write store), got %d: %w", len(files), errdefs.ErrInvalidArgument)
	}
	img, err := checkOverlayFile(files[0], "image", uid, false)
	if err != nil {
		return helperapi.OverlayInfo{}, err
	}
	cowSt, err := checkOverlayFile(files[1], "copy-on-write", uid, true)
	if err != nil {
		return helperapi.OverlayInfo{}, err
	}
	if img.Dev == cowSt.Dev && img.Ino == cowSt.Ino {
		return helperapi.OverlayInfo{}, fmt.Errorf("the image and the copy-on-write store are the same file: %w", errdefs.ErrInvalidArgument)
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	name := helperapi.DMName(uid, p.VMID)
	if _, ok := h.state.Overlays[name]; ok {
		return helperapi.OverlayInfo{}, fmt.Errorf("vm %s already has an overlay (%s): %w", p.VMID, name, errdefs.ErrConflict)
	}
	if n := len(h.state.overlaysOf(uid)); n >= h.cfg.MaxTapsPerUID {
		return helperapi.OverlayInfo{}, fmt.Errorf("uid %d already holds %d overlays, the most max_taps_per_uid allows: %w", uid, n, errdefs.ErrConflict)
	}
	if ok, detail := h.dmAvailable(ctx); !ok {
		return helperapi.OverlayInfo{}, fmt.Errorf("dm-snapshot is %w on this host: %s", errdefs.ErrUnavailable, detail)
	}

	// Intent first, as for taps.
	rec := &overlayRecord{Name: name, UID: uid, VMID: p.VMID, CreatedAt: model.Now()}
	h.state.Overlays[name] = rec
	if err := h.saveState(); err != nil {
		delete(h.state.Overlays, name)
		return helperapi.OverlayInfo{}, err
	}
	undo := func(err error) (helperapi.OverlayInfo, error) {
		if rerr := hostdisk.RemoveDM(ctx, name); rerr != nil && !errors.Is(rerr, hostdisk.ErrNotFound) {
			// Keep the unfinished record: reconcile removes it later.
			return helperapi.OverlayInfo{}, errors.Join(err, rerr)
		}
		delete(h.state.Overlays, name)
		return helperapi.OverlayInfo{}, errors.Join(err, h.saveState())
	}
	base, err := hostdisk.AttachLoop(files[0], true)
	if err != nil {
		return undo(fmt.Errorf("image: %w", err))
	}
	defer base.Close() // autoclear: the snapshot holds it from here on
	cow, err := hostdisk.AttachLoop(files[1], false)
	if err != nil {
		return undo(fmt.Errorf("copy-on-write store: %w", err))
	}
	defer cow.Close()
	dev, err := hostdisk.CreateSnapshot(ctx, name, base.Dev, cow.Dev, uid)
	if err != nil {
		return undo(err)
	}
	h.failpoint("overlay-created")
	rec.DMDev, rec.BaseLoop, rec.COWLoop, rec.Ready = dev, base.Path, cow.Path, true
	if err := h.saveState(); err != nil {
		rec.Ready = false
		return undo(err)
	}
	return rec.info(), nil
}

func (h *Helper) detachOverlay(ctx context.Context, p helperapi.OverlayDetachParams) (struct{}, error) {
	uid := peerUID(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	rec, ok := h.state.Overlays[p.DMName]
	if !ok || !rec.Ready {
		return struct{}{}, fmt.Errorf("overlay %q was not made by banger-helper: %w", p.DMName, errdefs.ErrNotFound)
	}
	if rec.UID != uid {
		return struct{}{}, fmt.Errorf("overlay %q belongs to another user: %w", p.DMName, errdefs.ErrUnauthorized)
	}
	if err := hostdisk.RemoveDM(ctx, p.DMName); err != nil && !errors.Is(err, hostdisk.ErrNotFound) {
		if errors.Is(err, syscall.EBUSY) || strings.Contains(err.Error(), "busy") {
			err = fmt.Errorf("%w (is the VM's VMM still running?): %w", err, errdefs.ErrConflict)
		}
		return struct{}{}, err
	}
	delete(h.state.Overlays, p.DMName)
	return struct{}{}, h.saveState()
}

func (r *overlayRecord) info() helperapi.OverlayInfo {
	return helperapi.OverlayInfo{DMName: r.Name, DMDev: r.DMDev, BaseLoop: r.BaseLoop, COWLoop: r.COWLoop, UID: r.UID}
}

func (s *state) overlaysOf(uid uint32) []*overlayRecord {
	var out []*overlayRecord
	for _, o := range s.Overlays {
		if o.UID == uid && o.Ready {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// reconcileOverlays makes device-mapper match the records: unfinished
// overlays are removed, records of vanished ones dropped, and devices
// with the helper's prefix but no record removed. Without device-mapper
// nothing of the helper's can exist, and every record is dropped.
func (h *Helper) reconcileOverlays(ctx context.Context) error {
	st := h.state
	if ok, _ := h.dmAvailable(ctx); !ok {
		for name := range st.Overlays {
			delete(st.Overlays, name)
			h.logger.Info("reconcile: dropped overlay record (no device-mapper)", "dm_name", name)
		}
		return nil
	}
	existing, err := hostdisk.ListDM(ctx, helperapi.DMPrefix)
	if err != nil {
		return err
	}
	present := map[string]bool{}
	for _, n := range existing {
		present[n] = true
	}
	for name, rec := range st.Overlays {
		switch {
		case !rec.Ready:
			if present[name] {
				if err := hostdisk.RemoveDM(ctx, name); err != nil && !errors.Is(err, hostdisk.ErrNotFound) {
					return err
				}
			}
			delete(st.Overlays, name)
			h.logger.Info("reconcile: removed unfinished overlay", "dm_name", name, "uid", rec.UID, "existed", present[name])
		case !present[name]:
			delete(st.Overlays, name)
			h.logger.Info("reconcile: dropped record of vanished overlay", "dm_name", name, "uid", rec.UID)
		}
	}
	for _, name := range existing {
		if _, ok := st.Overlays[name]; ok {
			continue
		}
		if err := hostdisk.RemoveDM(ctx, name); err != nil && !errors.Is(err, hostdisk.ErrNotFound) {
			return err
		}
		h.logger.Info("reconcile: removed unrecorded overlay", "dm_name", name)
	}
	return nil
}
