package imagebuild

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"banger/internal/guestapi"
)

// customize makes the tree a banger guest: the guest program and its
// unit, units masked that a microVM would only wait for, no SSH host keys
// (each VM gets its own), an empty machine-id (each boot makes one), no
// DNS server of the host's, and /root moved out as the work seed (the
// work disk is mounted there).
func (b *Builder) customize(mode Mode, tree, out string, art *Artifacts, bl *buildLog) error {
	etc := filepath.Join(tree, "etc")
	if err := copyFile(b.Guest.Binary, filepath.Join(tree, guestapi.GuestBinPath), 0o755); err != nil {
		return fmt.Errorf("install banger-guest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tree, guestapi.UnitPath), []byte(b.Guest.Unit), 0o644); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Join(tree, b.Guest.EnableLink)), 0o755); err != nil {
		return err
	}
	if err := replaceSymlink("../"+guestapi.UnitName, filepath.Join(tree, b.Guest.EnableLink)); err != nil {
		return err
	}
	for _, unit := range b.Guest.Mask {
		if err := replaceSymlink("/dev/null", filepath.Join(etc, "systemd", "system", unit)); err != nil {
			return err
		}
	}
	keys, _ := filepath.Glob(filepath.Join(etc, "ssh", "ssh_host_*"))
	for _, k := range keys {
		if err := os.Remove(k); err != nil {
			return err
		}
	}
	// resolv.conf: mmdebstrap leaves the host's in the tree. A guest gets
	// the DNS server banger passes it, or none; never the host's.
	if err := os.Remove(filepath.Join(etc, "resolv.conf")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	files := map[string]string{
		"resolv.conf":                   "# banger-guest writes the DNS server banger passes on the kernel command line here.\n",
		"machine-id":                    "",
		"hostname":                      "banger\n",
		"fstab":                         "# / is mounted by banger's initramfs; /root (the work disk) by banger-guest.\n",
		"ssh/sshd_config.d/banger.conf": "# banger: key logins only.\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	// The work seed: what /root starts with, copied onto each work disk.
	seed := filepath.Join(out, "work-seed")
	if err := os.Mkdir(seed, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(filepath.Join(tree, "root"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(tree, "root", e.Name()), filepath.Join(seed, e.Name())); err != nil {
			return fmt.Errorf("move /root/%s to the work seed: %w", e.Name(), err)
		}
	}
	bl.printf("customized: banger-guest, %d units masked, %d host keys removed, work seed of %d entries", len(b.Guest.Mask), len(keys), len(entries))
	return nil
}

func replaceSymlink(target, link string) error {
	if err := os.Remove(link); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return os.Symlink(target, link)
}
