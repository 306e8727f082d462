package workspace

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"banger/internal/api"
	"banger/internal/errdefs"
	"banger/internal/gitrepo"
	"banger/internal/guestssh"
	"banger/internal/model"
	"banger/internal/operation"
	"banger/internal/oplog"
	"banger/internal/shellquote"
)

// KindPrepare is the operation kind of a prepare into a running VM.
const KindPrepare = "workspace.prepare"

const (
	stageBuild = "build"
	stageCopy  = "copy"
	// existsStatus is the exit status of the guest's extract when the
	// guest path is taken.
	existsStatus = 17
	// removeLimit bounds the clean-up of a prepare that failed.
	removeLimit = 30 * time.Second
	// stallLimit is how long a copy into a guest may move no byte before
	// it is given up: a guest that stopped reading.
	stallLimit = 2 * time.Minute
)

var prepareStages = []string{stageBuild, stageCopy}

// PrepareBegin checks a prepare into a running VM — its mode, its
// repository, the VM — and starts it as an operation.
func (s *Service) PrepareBegin(ctx context.Context, p api.WorkspacePrepareParams) (model.Operation, error) {
	mode, err := model.ParseWorkspacePrepareMode(p.Mode)
	if err != nil {
		return model.Operation{}, err
	}
	src, err := s.inspect(ctx, mode, p.Path)
	if err != nil {
		return model.Operation{}, err
	}
	vm, target, err := s.vms.GuestTarget(ctx, p.Name)
	if err != nil {
		return model.Operation{}, err
	}
	// Held from the check to the operation's start, so two prepares at
	// once cannot both pass it.
	unlock, err := s.lock(ctx, vm.ID)
	if err != nil {
		return model.Operation{}, err
	}
	defer unlock()
	if ws, err := s.store.GetWorkspace(ctx, vm.ID); err == nil {
		return model.Operation{}, fmt.Errorf("vm %s has a workspace already (%s at %s); harvest it with 'banger workspace harvest %s', or make another VM: %w",
			vm.Name, ws.RepoRoot, ws.GuestPath, vm.Name, errdefs.ErrConflict)
	} else if !errors.Is(err, errdefs.ErrNotFound) {
		return model.Operation{}, err
	}
	if running := s.ops.Running(KindPrepare, vm.Name); len(running) > 0 {
		return model.Operation{}, fmt.Errorf("a workspace is being prepared in vm %s already (%s): %w", vm.Name, running[0].ID, errdefs.ErrConflict)
	}
	return s.ops.Begin(ctx, KindPrepare, vm.Name, prepareStages, func(ctx context.Context, r *operation.Reporter) (any, error) {
		return s.prepare(ctx, r, vm, target, src)
	})
}

// prepare builds the repository on the host, streams it into the guest
// as a tar archive, and records the workspace.
func (s *Service) prepare(ctx context.Context, r *operation.Reporter, vm model.VMRecord, target guestssh.Target, src source) (api.WorkspacePrepareDetail, error) {
	op := oplog.Begin(ctx, s.logger, KindPrepare, append(oplog.VMAttrs(vm), "repo", src.repo.Root, "mode", string(src.mode))...)
	rep := operation.Logged{Reporter: r, Log: op}
	var detail api.WorkspacePrepareDetail
	tmp, err := os.MkdirTemp(s.tempDir, "workspace-")
	if err != nil {
		return detail, op.Fail(fmt.Errorf("workspace: %w", err))
	}
	defer os.RemoveAll(tmp)

	rep.Stage(stageBuild)
	dir := filepath.Join(tmp, src.repo.Name)
	b, err := s.build(ctx, vm, src, dir, r)
	if err != nil {
		return detail, op.Fail(err)
	}

	rep.Stage(stageCopy)
	if err := s.send(ctx, target, dir, b.res.GuestPath, b.out, r); err != nil {
		return detail, op.Fail(err)
	}
	if err := s.store.SaveWorkspace(ctx, b.res, b.tree); err != nil {
		// Not recorded, so not there: the next prepare must find the
		// guest path free.
		s.removeFromGuest(target, b.res.GuestPath)
		return detail, op.Fail(err)
	}
	op.Done("files", b.out.Files, "bytes", b.out.Bytes)
	return api.WorkspacePrepareDetail{
		WorkspacePrepareResult: b.res, Files: b.out.Files, Bytes: b.out.Bytes,
		LFSPointers: b.out.LFSPointers, Submodules: b.out.Submodules, Warnings: b.out.Warnings,
	}, nil
}

// removeFromGuest removes a workspace the guest was sent but banger did
// not record, as well as it can: under a context of its own, since the
// request's may be what failed.
func (s *Service) removeFromGuest(target guestssh.Target, guestPath string) {
	ctx, cancel := context.WithTimeout(context.Background(), removeLimit)
	defer cancel()
	if err := s.guests.Run(ctx, target, guestssh.Cmd{Command: "rm -rf -- " + shellquote.Quote(guestPath)}); err != nil {
		s.logger.Warn("workspace left in the guest after a failed prepare", "vm_name", target.Name, "path", guestPath, "error", err.Error())
	}
}

// extractScript unpacks the archive on standard input at guestPath: in
// a directory of its own next to it, moved into place only once all of
// it is there, so a failure leaves no half repository under the name.
func extractScript(guestPath string) string {
	q := shellquote.Quote(guestPath)
	return fmt.Sprintf(`set -e
dst=%s
if [ -e "$dst" ] || [ -L "$dst" ]; then echo "$dst exists already in the guest" >&2; exit %d; fi
tmp=$(mktemp -d "$(dirname "$dst")/.banger-workspace.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' TERM HUP INT
chmod 755 "$tmp"
tar -x --no-same-owner -f - -C "$tmp"
mv -T "$tmp" "$dst"
`, q, existsStatus)
}

// send streams dir into the guest at guestPath, reporting bytes sent;
// a guest that takes nothing for stallLimit ends it.
func (s *Service) send(ctx context.Context, target guestssh.Target, dir, guestPath string, built gitrepo.BuildResult, rep Progress) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	pr, pw := io.Pipe()
	var sent atomic.Int64
	go func() { pw.CloseWithError(writeTar(pw, dir, &sent)) }()
	done := make(chan struct{})
	go watchCopy(done, &sent, built, rep, cancel)
	stderr, caught := guestssh.Stderr()
	err := s.guests.Run(ctx, target, guestssh.Cmd{Command: extractScript(guestPath), Stdin: pr, Stderr: stderr})
	close(done)
	pr.CloseWithError(errors.New("the guest stopped reading"))
	if cause := context.Cause(ctx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause
	}
	var ee *guestssh.ExitError
	switch {
	case errors.As(err, &ee) && ee.Status == existsStatus:
		return fmt.Errorf("%s exists already in vm %s; remove it there first: %w", guestPath, target.Name, errdefs.ErrConflict)
	case err != nil && caught() != "":
		return fmt.Errorf("copy into vm %s: %w: %s", target.Name, err, caught())
	case err != nil:
		return fmt.Errorf("copy into vm %s: %w", target.Name, err)
	}
	rep.Detail(fmt.Sprintf("copied %s, %s", plural(built.Files, "file"), model.HumanBytes(sent.Load())), 1)
	return nil
}

// errStalled: the guest took no data for stallLimit.
var errStalled = fmt.Errorf("the guest took no data for %s", stallLimit)

// watchCopy says how far a copy is, twice a second, until done, and
// ends it (through stop) when nothing moved for stallLimit.
func watchCopy(done <-chan struct{}, sent *atomic.Int64, built gitrepo.BuildResult, rep Progress, stop context.CancelCauseFunc) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	last, moved := int64(-1), time.Now()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		n := sent.Load()
		if n != last {
			last, moved = n, time.Now()
		} else if time.Since(moved) > stallLimit {
			stop(errStalled)
			return
		}
		frac := -1.0
		if built.Bytes > 0 {
			frac = min(float64(n)/float64(built.Bytes), 0.99)
		}
		rep.Detail(fmt.Sprintf("copying %s: %s of %s", plural(built.Files, "file"), model.HumanBytes(n), model.HumanBytes(built.Bytes)), frac)
	}
}

// writeTar writes dir as a tar archive of "./"-relative names, owned by
// root, modes and symlinks as they are.
// The archive goes through a 64 KiB buffer: written straight into the
// SSH session, every header and small file left on its own, which made
// a copy of this project's repository into a guest 7–9 s instead of 2.
func writeTar(w io.Writer, dir string, sent *atomic.Int64) error {
	buf := bufio.NewWriterSize(&countingWriter{w: w, n: sent}, 64<<10)
	tw := tar.NewWriter(buf)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return tarEntry(tw, p, "./"+filepath.ToSlash(rel), info)
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return buf.Flush()
}

func tarEntry(tw *tar.Writer, p, name string, info fs.FileInfo) error {
	link := ""
	if info.Mode()&fs.ModeSymlink != 0 {
		var err error
		if link, err = os.Readlink(p); err != nil {
			return err
		}
	} else if !info.Mode().IsRegular() && !info.IsDir() {
		return nil // git makes no other kind
	}
	hdr, err := tar.FileInfoHeader(info, link)
	if err != nil {
		return err
	}
	hdr.Name, hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = name, 0, 0, "root", "root"
	if info.IsDir() {
		hdr.Name += "/"
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}
