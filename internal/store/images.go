package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"banger/internal/errdefs"
	"banger/internal/model"
)

const selectImages = `SELECT id, name, managed, artifact_dir, rootfs_path, work_seed_path,
	kernel_path, initrd_path, modules_dir, build_size,
	seeded_ssh_public_key_fingerprint, created_at, updated_at FROM images`

// CreateImage inserts img. A taken name or id is errdefs.ErrConflict.
func (s *Store) CreateImage(ctx context.Context, img model.Image) error {
	if err := validateImage(img); err != nil {
		return err
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO images (
	name, managed, artifact_dir, rootfs_path, work_seed_path,
	kernel_path, initrd_path, modules_dir, build_size,
	seeded_ssh_public_key_fingerprint, created_at, updated_at, id
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, imageArgs(img)...)
		if err != nil {
			return imageWriteError(ctx, tx, "create", img, err)
		}
		return nil
	})
}

// GetImage returns the image with exactly this id.
func (s *Store) GetImage(ctx context.Context, id string) (model.Image, error) {
	if strings.TrimSpace(id) == "" {
		return model.Image{}, fmt.Errorf("empty image id: %w", errdefs.ErrInvalidArgument)
	}
	found, err := queryAll(ctx, s.reader, scanImage, selectImages+" WHERE id = ?", id)
	if err != nil {
		return model.Image{}, fmt.Errorf("get image %q: %w", id, err)
	}
	if len(found) == 0 {
		return model.Image{}, fmt.Errorf("image %q: %w", id, errdefs.ErrNotFound)
	}
	return found[0], nil
}

// FindImage resolves what a user typed: an exact name, an exact id, or a
// unique id prefix of at least four hex digits, in that order. An
// ambiguous prefix is errdefs.ErrInvalidArgument.
func (s *Store) FindImage(ctx context.Context, ref string) (model.Image, error) {
	return findByRef(ctx, s.reader, "image", selectImages, scanImage, ref)
}

// ListImages returns every image ordered by name.
func (s *Store) ListImages(ctx context.Context) ([]model.Image, error) {
	images, err := queryAll(ctx, s.reader, scanImage, selectImages+" ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	return images, nil
}

// UpdateImage overwrites every column of the image with img.ID. The store
// sets no timestamps; the caller bumps UpdatedAt.
func (s *Store) UpdateImage(ctx context.Context, img model.Image) error {
	if err := validateImage(img); err != nil {
		return err
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE images SET
	name = ?, managed = ?, artifact_dir = ?, rootfs_path = ?, work_seed_path = ?,
	kernel_path = ?, initrd_path = ?, modules_dir = ?, build_size = ?,
	seeded_ssh_public_key_fingerprint = ?, created_at = ?, updated_at = ?
WHERE id = ?`, imageArgs(img)...)
		if err != nil {
			return imageWriteError(ctx, tx, "update", img, err)
		}
		return requireRow(res, "image", img.ID)
	})
}

// DeleteImage removes the image record (not its files). It fails with
// errdefs.ErrConflict while any VM still uses the image.
func (s *Store) DeleteImage(ctx context.Context, id string) error {
	if strings.TrimSpace(id) == "" {
		return fmt.Errorf("empty image id: %w", errdefs.ErrInvalidArgument)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM images WHERE id = ?", id)
		if isForeignKeyViolation(err) {
			return imageInUseError(ctx, tx, id, err)
		}
		if err != nil {
			return fmt.Errorf("delete image %q: %w", id, err)
		}
		return requireRow(res, "image", id)
	})
}

func validateImage(img model.Image) error {
	if strings.TrimSpace(img.ID) == "" {
		return fmt.Errorf("image %q: empty id: %w", img.Name, errdefs.ErrInvalidArgument)
	}
	if strings.TrimSpace(img.Name) == "" {
		return fmt.Errorf("image %q: empty name: %w", img.ID, errdefs.ErrInvalidArgument)
	}
	return nil
}

// imageArgs lists img's columns in the order CreateImage and UpdateImage
// bind them: every column but id, then id.
func imageArgs(img model.Image) []any {
	return []any{
		img.Name, img.Managed, img.ArtifactDir, img.RootfsPath, img.WorkSeedPath,
		img.KernelPath, img.InitrdPath, img.ModulesDir, img.BuildSize,
		img.SeededSSHPublicKeyFingerprint, formatTime(img.CreatedAt), formatTime(img.UpdatedAt),
		img.ID,
	}
}

func scanImage(row rowScanner) (model.Image, error) {
	var (
		img                  model.Image
		createdAt, updatedAt string
		err                  error
	)
	if err := row.Scan(&img.ID, &img.Name, &img.Managed, &img.ArtifactDir, &img.RootfsPath,
		&img.WorkSeedPath, &img.KernelPath, &img.InitrdPath, &img.ModulesDir, &img.BuildSize,
		&img.SeededSSHPublicKeyFingerprint, &createdAt, &updatedAt); err != nil {
		return model.Image{}, fmt.Errorf("scan image: %w", err)
	}
	if img.CreatedAt, err = parseTime("created_at", createdAt); err != nil {
		return model.Image{}, fmt.Errorf("image %q: %w", img.ID, err)
	}
	if img.UpdatedAt, err = parseTime("updated_at", updatedAt); err != nil {
		return model.Image{}, fmt.Errorf("image %q: %w", img.ID, err)
	}
	return img, nil
}

// imageWriteError turns a failed insert or update into an error naming
// what collided. The unique-violation code does not say which constraint
// failed, so it asks the database, inside the same transaction, which the
// write lock keeps consistent.
func imageWriteError(ctx context.Context, tx *sql.Tx, op string, img model.Image, cause error) error {
	if !isUniqueViolation(cause) {
		return fmt.Errorf("%s image %q: %w", op, img.Name, busyAsUnavailable(cause))
	}
	taken, err := exists(ctx, tx, "SELECT 1 FROM images WHERE name = ? AND id <> ?", img.Name, img.ID)
	if err != nil {
		return fmt.Errorf("%s image %q: %w", op, img.Name, err)
	}
	if taken {
		return fmt.Errorf("image name %q is already taken: %w", img.Name, errdefs.ErrConflict)
	}
	if op == "create" {
		return fmt.Errorf("image id %q already exists: %w", img.ID, errdefs.ErrConflict)
	}
	return fmt.Errorf("%s image %q: %w: %w", op, img.Name, errdefs.ErrConflict, cause)
}

// imageInUseError names the VMs that keep an image from being deleted.
func imageInUseError(ctx context.Context, tx *sql.Tx, id string, cause error) error {
	rows, err := tx.QueryContext(ctx, "SELECT name FROM vms WHERE image_id = ? ORDER BY name", id)
	if err != nil {
		return fmt.Errorf("delete image %q: %w: %w", id, errdefs.ErrConflict, cause)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return fmt.Errorf("delete image %q: %w", id, err)
		}
		names = append(names, name)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("delete image %q: %w", id, err)
	}
	return fmt.Errorf("image %q is in use by vm(s) %s: %w", id, strings.Join(names, ", "), errdefs.ErrConflict)
}
