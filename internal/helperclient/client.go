// Package helperclient is bangerd's client of banger-helper: one typed
// method per helper operation, over the RPC protocol. It is the only
// part of the helper's contract that needs the RPC package; the types
// and names it sends are helperapi's.
package helperclient

import (
	"context"
	"errors"
	"fmt"
	"os"

	"banger/internal/errdefs"
	"banger/internal/helperapi"
	"banger/internal/opid"
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
	if errors.As(err, &remote) && remote.OpID != "" && remote.OpID == opid.From(ctx) {
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
func (c Client) Status(ctx context.Context) (helperapi.StatusResult, error) {
	var res helperapi.StatusResult
	err := c.call(ctx, helperapi.MethodStatus, nil, &res)
	return res, err
}

// EnsureBridge creates the bridge if needed and brings it up.
func (c Client) EnsureBridge(ctx context.Context) (helperapi.EnsureBridgeResult, error) {
	var res helperapi.EnsureBridgeResult
	err := c.call(ctx, helperapi.MethodBridgeEnsure, nil, &res)
	return res, err
}

// CreateTap makes a new tap owned by the caller, on the bridge, up.
func (c Client) CreateTap(ctx context.Context) (string, error) {
	var res helperapi.TapCreateResult
	if err := c.call(ctx, helperapi.MethodTapCreate, nil, &res); err != nil {
		return "", err
	}
	return res.Name, nil
}

// DeleteTap deletes one of the caller's taps, and any NAT entry behind it.
func (c Client) DeleteTap(ctx context.Context, name string) error {
	return c.call(ctx, helperapi.MethodTapDelete, helperapi.TapDeleteParams{Name: name}, nil)
}

// EnableNAT masquerades guestIP, reachable through the caller's tap.
func (c Client) EnableNAT(ctx context.Context, tap, guestIP string) (helperapi.NATEntry, error) {
	var res helperapi.NATEntry
	err := c.call(ctx, helperapi.MethodNATEnable, helperapi.NATEnableParams{Tap: tap, GuestIP: guestIP}, &res)
	return res, err
}

// DisableNAT removes the NAT entry of guestIP.
func (c Client) DisableNAT(ctx context.Context, guestIP string) error {
	return c.call(ctx, helperapi.MethodNATDisable, helperapi.NATDisableParams{GuestIP: guestIP}, nil)
}

// AttachOverlay builds the dm-snapshot system overlay of VM vmID over
// image (open read-only) and cow (open read-write), passing both files
// open: the helper never opens a path the caller names.
func (c Client) AttachOverlay(ctx context.Context, vmID string, image, cow *os.File) (helperapi.OverlayInfo, error) {
	var res helperapi.OverlayInfo
	err := c.callFiles(ctx, helperapi.MethodOverlayAttach, helperapi.OverlayAttachParams{VMID: vmID}, &res, image, cow)
	return res, err
}

// DetachOverlay removes one of the caller's dm-snapshot overlays (and
// with it the loop devices under it).
func (c Client) DetachOverlay(ctx context.Context, dmName string) error {
	return c.call(ctx, helperapi.MethodOverlayDetach, helperapi.OverlayDetachParams{DMName: dmName}, nil)
}
