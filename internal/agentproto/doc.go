// Package agentproto is the wire protocol of the guest agent channel:
// one long-lived, multiplexed byte stream between bangerd and the
// banger-guest agent in a VM, carried by vsock where the VMM has it and
// by a virtio-serial port otherwise. Both ends link it; neither trusts
// the other's bytes: every frame is bounded and checked when read.
package agentproto

// Where the channel is found, on either end.
const (
	// VsockPort is the AF_VSOCK port the agent listens on when the guest
	// has a vsock device (Firecracker; QEMU with vhost-vsock).
	VsockPort = 1024
	// SerialPortName is the name of the virtio-serial port the VMM gives
	// the guest otherwise; the guest finds its device node through
	// /sys/class/virtio-ports/*/name.
	SerialPortName = "org.banger.agent.0"
	// TokenBytes is the length of the per-VM token that authenticates the
	// daemon to the agent (stored hex-encoded, 2×TokenBytes characters).
	TokenBytes = 32
)
