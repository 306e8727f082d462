package helperapi

import (
	"context"
	"errors"
	"fmt"
	"os"

	"banger/internal/errdefs"
	"banger/internal/rpc"
)

// Client calls banger-helper. The op id on each call's context is
// forwarded, so the helper logs under the daemon operation's id.
type Client struct {
	Socket string
}

func (c Client) call(ctx context.Context, method string, params, result any) error {
	return c.callFiles(ctx, method, params, result)
}

func (c Client) callFiles(ctx context.Context, method string, params, result any, files ...*os.File) error {
	err := rpc.CallWithFiles(ctx, c.Socket, method, params, result, files...)
	var remote *rpc.ErrorResponse
	if errors.As(err, &remote) && remote.OpID != "" && remote.OpID == rpc.OpIDFromContext(ctx) {
		// The same operation's id: the caller's own error will carry it;
		// saying it twice in one message helps nobody.
		e := *remote
		e.OpID = ""
		return &e
	}
	if rpc.IsNotListening(err) {
		return fmt.Errorf("banger-helper is %w at %s: not running; install it with 'sudo banger system install'",
			errdefs.ErrUnavailable, c.Socket)
	}
	return err
}

// Status reports the helper, its bridge and the caller's taps and NAT.
func (c Client) Status(ctx context.Context) (StatusResult, error) {
	var res StatusResult
	err := c.call(ctx, MethodStatus, nil, &res)
	return res, err
}

// EnsureBridge creates the bridge if needed and brings it up.
func (c Client) EnsureBridge(ctx context.Context) (EnsureBridgeResult, error) {
	var res EnsureBridgeResult
	err := c.call(ctx, MethodBridgeEnsure, nil, &res)
	return res, err
}

// CreateTap makes a new tap owned by the caller, on the bridge, up.
func (c Client) CreateTap(ctx context.Context) (string, error) {
	var res TapCreateResult
	if err := c.call(ctx, MethodTapCreate, nil, &res); err != nil {
		return "", err
	}
	return res.Name, nil
}

// DeleteTap deletes one of the caller's taps, and any NAT entry behind it.
func (c Client) DeleteTap(ctx context.Context, name string) error {
	return c.call(ctx, MethodTapDelete, TapDeleteParams{Name: name}, nil)
}

// EnableNAT masquerades guestIP, reachable through the caller's tap.
func (c Client) EnableNAT(ctx context.Context, tap, guestIP string) (NATEntry, error) {
	var res NATEntry
	err := c.call(ctx, MethodNATEnable, NATEnableParams{Tap: tap, GuestIP: guestIP}, &res)
	return res, err
}

// DisableNAT removes the NAT entry of guestIP.
func (c Client) DisableNAT(ctx context.Context, guestIP string) error {
	return c.call(ctx, MethodNATDisable, NATDisableParams{GuestIP: guestIP}, nil)
}

// AttachOverlay builds the dm-snapshot system overlay of VM vmID over
// image (open read-only) and cow (open read-write), passing both files
// open: the helper never opens a path the caller names.
func (c Client) AttachOverlay(ctx context.Context, vmID string, image, cow *os.File) (OverlayInfo, error) {
	var res OverlayInfo
	err := c.callFiles(ctx, MethodOverlayAttach, OverlayAttachParams{VMID: vmID}, &res, image, cow)
	return res, err
}

// DetachOverlay removes one of the caller's dm-snapshot overlays (and
// with it the loop devices under it).
func (c Client) DetachOverlay(ctx context.Context, dmName string) error {
	return c.call(ctx, MethodOverlayDetach, OverlayDetachParams{DMName: dmName}, nil)
}
