package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"banger/internal/api"
	"banger/internal/disk"
	"banger/internal/rpc"
)

var workspaceModes = []string{"shallow_overlay", "full_copy", "metadata_only"}

// BenchmarkWorkspacePrepare: `banger workspace prepare VM PATH --mode M`
// into a running VM (the whole CLI process: the operation, the build on
// the host, the copy over the daemon's SSH connection, the record), per
// mode, of a clone of this project's repository with an uncommitted
// change and an untracked file. The raw side, in the same iteration,
// does the same work with git, tar and ssh (rawBuild), then `tar c` of
// the result piped to `ssh VM tar x`, over an SSH connection opened
// before (ControlMaster), as the daemon's is. Between iterations the
// guest's copy and the workspace's record are removed (a VM has one
// workspace), both file systems synced. The generated repository is
// left to BenchmarkWorkspaceCreate: a guest under emulation takes in
// about 6 MB/s over SSH, ~80 s for its ~480 MB. Run with -benchtime 3x.
func BenchmarkWorkspacePrepare(b *testing.B) {
	benchRepoIdentity(b)
	src := selfRepo(b, b.TempDir())
	name := filepath.Base(src)
	e := newBenchEnv(b, "")
	e.must("vm", "create", "--name", "wp", "--disk", "4G")
	vmID := e.show("wp").ID
	g := openGuestShell(b, e, "wp")
	dropWorkspace := func() {
		g.run("rm -rf /root/" + name + " && sync")
		deleteWorkspaceRecord(b, e, vmID)
		quiesce(b)
	}
	// The daemon opens its SSH connection to a guest on first use, and
	// the first copy into a fresh guest is slower (its caches): once
	// here, not in the first sample.
	e.must("workspace", "prepare", "wp", src)
	dropWorkspace()
	g.run("mkdir /root/raw && rm -rf /root/raw")
	dst := filepath.Join(b.TempDir(), name)
	for _, mode := range workspaceModes {
		b.Run(mode, func(b *testing.B) {
			banger := newNamedSamples(b, b.Name()+"/banger", "s/prepare")
			raw := newNamedSamples(b, b.Name()+"/raw", "s/prepare")
			for b.Loop() {
				t0 := time.Now()
				if r := e.direct("workspace", "prepare", "wp", src, "--mode", mode); r.code != 0 {
					b.Fatalf("prepare --mode %s %s: %s", mode, src, r.stderr)
				}
				banger.add(time.Since(t0).Seconds())
				dropWorkspace()

				t0 = time.Now()
				rawBuild(b, src, dst, mode)
				pipeline(b, exec.Command("tar", "c", "-C", dst, "."), g.cmd("mkdir /root/raw && tar x --no-same-owner -C /root/raw"))
				raw.add(time.Since(t0).Seconds())
				os.RemoveAll(dst)
				g.run("rm -rf /root/raw && sync")
				quiesce(b)
			}
			banger.report()
			raw.report()
		})
	}
}

// BenchmarkWorkspaceCreate: `banger vm create --no-start --workspace
// PATH --workspace-mode M` (the workspace built onto the new VM's work
// disk as it is made), per mode, of a clone of this project's
// repository (/self) and of the generated repository of 20,000 files,
// ~300 MB and 5,000 commits (/generated), each with an uncommitted
// change and an untracked file, against `banger vm create --no-start`
// without one plus the raw work, in the same iteration: the same
// repository made with git and tar (rawBuild) in a staging directory,
// and `mkfs.ext4 -d` of it into a work disk of the same size, synced
// (so the raw side makes two file systems where banger makes one: a
// few milliseconds). Samples: /<repo>/<mode>-banger and -raw. Run with
// -benchtime 3x (/generated: 2x, ~55 s an iteration).
func BenchmarkWorkspaceCreate(b *testing.B) {
	benchRepoIdentity(b)
	repos := []struct{ name, path string }{{"self", selfRepo(b, b.TempDir())}, {"generated", generatedRepo(b)}}
	e := newBenchEnv(b, "")
	n := 0
	create := func(b *testing.B, args ...string) float64 {
		n++
		name := fmt.Sprintf("c%d", n)
		t0 := time.Now()
		if r := e.direct(append([]string{"vm", "create", "--no-start", "--name", name, "--disk", "4G"}, args...)...); r.code != 0 {
			b.Fatalf("create %v: %s", args, r.stderr)
		}
		d := time.Since(t0).Seconds()
		e.must("vm", "rm", name)
		quiesce(b)
		return d
	}
	for _, repo := range repos {
		b.Run(repo.name, func(b *testing.B) {
			stage := b.TempDir()
			var banger, raw []*samples
			for _, mode := range workspaceModes {
				short, _, _ := strings.Cut(mode, "_")
				banger = append(banger, newNamedSamples(b, b.Name()+"/"+short+"-banger", "s/create"))
				raw = append(raw, newNamedSamples(b, b.Name()+"/"+short+"-raw", "s/create"))
			}
			for b.Loop() {
				plain := create(b)
				for i, mode := range workspaceModes {
					banger[i].add(create(b, "--workspace", repo.path, "--workspace-mode", mode))
					t0 := time.Now()
					rawBuild(b, repo.path, filepath.Join(stage, "tree", filepath.Base(repo.path)), mode)
					img := filepath.Join(stage, "work.ext4")
					runCmd(b, "mkfs.ext4", append(append([]string{"-q", "-F", "-L", "banger-work", "-O", "^resize_inode"}, disk.MkfsLazyInit...),
						"-d", filepath.Join(stage, "tree"), img, "4G")...)
					runCmd(b, "sync", img)
					raw[i].add(plain + time.Since(t0).Seconds())
					os.RemoveAll(filepath.Join(stage, "tree"))
					os.Remove(img)
					quiesce(b)
				}
			}
			for i := range banger {
				banger[i].report()
				raw[i].report()
			}
		})
	}
}

// rawBuild makes at dst, with git and tar, what the mode gives a guest:
// `git clone --depth 1 file://PATH` (shallow_overlay), `git clone
// --mirror` and a checkout (full_copy), or `git clone --no-checkout`
// (metadata_only); for the overlay modes the files `git status` lists,
// `tar c | tar x` into the clone. The local clones copy the object
// files (--no-hardlinks), as banger must: through a hardlink, git's
// freshening of an object it is asked to write again would touch the
// host's file.
func rawBuild(b *testing.B, src, dst, mode string) {
	switch mode {
	case "shallow_overlay":
		runCmd(b, "git", "clone", "-q", "--depth", "1", "--no-tags", "file://"+src, dst)
	case "full_copy":
		runCmd(b, "git", "clone", "-q", "--mirror", "--no-hardlinks", src, filepath.Join(dst, ".git"))
		runCmd(b, "git", "-C", dst, "config", "core.bare", "false")
		runCmd(b, "git", "-C", dst, "reset", "-q", "--hard")
	case "metadata_only":
		runCmd(b, "git", "clone", "-q", "--no-checkout", "--no-hardlinks", src, dst)
		return
	}
	tarc := exec.Command("tar", "c", "-C", src, "--null", "-T", "-")
	tarc.Stdin = strings.NewReader(strings.Join(changedPaths(b, src), "\x00") + "\x00")
	pipeline(b, tarc, exec.Command("tar", "x", "-C", dst))
}

// changedPaths are the paths `git status` lists in repo that exist:
// what an overlay copies (a deletion has nothing to copy).
func changedPaths(b *testing.B, repo string) []string {
	out, err := exec.Command("git", "-C", repo, "status", "--porcelain", "-z", "--no-renames", "--untracked-files=all").Output()
	if err != nil {
		b.Fatalf("git status in %s: %v", repo, err)
	}
	var paths []string
	for _, entry := range strings.Split(string(out), "\x00") {
		if len(entry) < 4 {
			continue
		}
		if p := entry[3:]; fileExists(filepath.Join(repo, p)) {
			paths = append(paths, p)
		}
	}
	return paths
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// BenchmarkWorkspaceHarvest: `banger workspace harvest VM` of 10 commits
// made in the guest (the whole CLI process: the guest's state, the
// bundle made there and read over the daemon's SSH connection, the
// checked import into the host repository, the log of what came),
// against the raw work, in the same iteration: `git bundle create` of
// the same 10 commits in the guest, streamed over ssh (a connection
// opened before) to a host file, and `git fetch` of it into the host
// repository. Before each, the guest's branch goes back to the base and
// gets 10 new commits, and the host's branch is deleted. The repository
// is a clone of this project's. Run with -benchtime 3x.
func BenchmarkWorkspaceHarvest(b *testing.B) {
	benchRepoIdentity(b)
	src := selfRepo(b, b.TempDir())
	base := hostGit(b, src, "rev-parse", "HEAD")
	e := newBenchEnv(b, "")
	e.must("vm", "create", "--name", "hv", "--workspace", src)
	g := openGuestShell(b, e, "hv")
	recommit := func() {
		g.run(fmt.Sprintf(`cd /root/banger && git reset -q --hard %s && for i in 1 2 3 4 5 6 7 8 9 10; do
	echo "$i $(date +%%s%%N)" > bench-$i.txt && git add bench-$i.txt && git commit -qm "bench commit $i" || exit 1
done && sync`, base))
	}
	// The daemon's SSH connection opened, as in a VM in use.
	e.must("workspace", "harvest", "hv")
	bundle := filepath.Join(b.TempDir(), "guest.bundle")
	banger := newNamedSamples(b, "BenchmarkWorkspaceHarvest/banger", "s/harvest")
	raw := newNamedSamples(b, "BenchmarkWorkspaceHarvest/raw", "s/harvest")
	for b.Loop() {
		recommit()
		exec.Command("git", "-C", src, "branch", "-q", "-D", "banger/hv").Run()
		quiesce(b)
		t0 := time.Now()
		r := e.direct("workspace", "harvest", "hv")
		banger.add(time.Since(t0).Seconds())
		if r.code != 0 || !strings.Contains(r.stdout, "harvested 10 commits") {
			b.Fatalf("harvest: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}

		recommit()
		exec.Command("git", "-C", src, "update-ref", "-d", "refs/heads/raw-harvest").Run()
		quiesce(b)
		t0 = time.Now()
		f, err := os.Create(bundle)
		if err != nil {
			b.Fatal(err)
		}
		var stderr bytes.Buffer
		c := g.cmd("cd /root/banger && git bundle create -q - refs/heads/banger/hv ^" + base)
		c.Stdout, c.Stderr = f, &stderr
		if err := c.Run(); err != nil {
			b.Fatalf("bundle in the guest: %v %s", err, stderr.String())
		}
		f.Close()
		runCmd(b, "git", "-C", src, "fetch", "-q", bundle, "refs/heads/banger/hv:refs/heads/raw-harvest")
		raw.add(time.Since(t0).Seconds())
		if n := hostGit(b, src, "rev-list", "--count", base+"..raw-harvest"); n != "10" {
			b.Fatalf("raw harvest brought %s commits", n)
		}
	}
	banger.report()
	raw.report()
}

// BenchmarkWorkspaceRun: `banger run PATH -- true`, wall time (create
// with the workspace, boot to SSH, the command, harvest, rm), against
// the same done with the four commands it stands for — `banger vm
// create --workspace PATH`, `banger vm exec VM -- true`, `banger
// workspace harvest VM`, `banger vm rm --force VM` — one after the
// other in the same iteration. The repository is a clone of this
// project's. Each boots a guest: run with -benchtime 3x.
func BenchmarkWorkspaceRun(b *testing.B) {
	benchRepoIdentity(b)
	src := selfRepo(b, b.TempDir())
	e := newBenchEnv(b, "")
	run := newNamedSamples(b, "BenchmarkWorkspaceRun/banger", "s/run")
	steps := newNamedSamples(b, "BenchmarkWorkspaceRun/steps", "s/run")
	n := 0
	for b.Loop() {
		t0 := time.Now()
		// In the namespace: banger run runs ssh itself, as vm exec does.
		if r := e.banger("run", src, "--", "true"); r.code != 0 {
			b.Fatalf("banger run: exit %d\n%s", r.code, r.stderr)
		}
		run.add(time.Since(t0).Seconds())
		var left []api.VMDetail
		if err := json.Unmarshal([]byte(e.must("--json", "vm", "ls").stdout), &left); err != nil || len(left) != 0 {
			b.Fatalf("banger run left %d VMs (%v)", len(left), err)
		}
		quiesce(b)

		n++
		name := fmt.Sprintf("r%d", n)
		t0 = time.Now()
		for _, r := range []result{
			e.direct("vm", "create", "--name", name, "--workspace", src),
			e.banger("vm", "exec", name, "--", "true"),
			e.direct("workspace", "harvest", name),
			e.direct("vm", "rm", "--force", name),
		} {
			if r.code != 0 {
				b.Fatalf("%s: exit %d\n%s", name, r.code, r.stderr)
			}
		}
		steps.add(time.Since(t0).Seconds())
		quiesce(b)
	}
	run.report()
	steps.report()
}

// guestShell runs commands in a guest over one SSH connection opened
// once (an OpenSSH ControlMaster in the namespace), as a program that
// keeps a connection would: the handshake is what costs under
// emulation. Commands start outside the namespace and go through the
// master's socket.
type guestShell struct {
	b    *testing.B
	args []string // ssh's options and destination
}

func openGuestShell(b *testing.B, e *vmEnv, vm string) *guestShell {
	b.Helper()
	var info api.VMSSHInfo
	sock := filepath.Join(e.run, "banger", "bangerd.sock")
	if err := rpc.Call(context.Background(), sock, api.MethodVMSSHInfo, api.VMRef{Name: vm}, &info); err != nil {
		b.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "bws")
	if err != nil {
		b.Fatal(err)
	}
	ctl := filepath.Join(dir, "ctl")
	opts := []string{"-F", "/dev/null", "-i", info.IdentityFile, "-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + info.KnownHostsFile, "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes", "-o", "HostKeyAlias=" + info.HostKeyAlias, "-o", "UpdateHostKeys=no",
		"-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-p", fmt.Sprint(info.Port), "-S", ctl}
	dest := info.User + "@" + info.Host
	master := e.ns.Cmd("ssh", append(append([]string{}, opts...), "-M", "-N", dest)...)
	var stderr bytes.Buffer
	master.Stderr = &stderr
	if err := master.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		master.Process.Kill()
		master.Wait()
		os.RemoveAll(dir)
	})
	for i := 0; !fileExists(ctl); i++ {
		if i > 600 {
			b.Fatalf("no ssh control socket after 60 s: %s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return &guestShell{b: b, args: append(opts, "-o", "ControlMaster=no", "-T", dest)}
}

// cmd is remote, a command line for the guest's shell, as a command.
func (g *guestShell) cmd(remote string) *exec.Cmd {
	return exec.Command("ssh", append(append([]string{}, g.args...), remote)...)
}

func (g *guestShell) run(remote string) {
	g.b.Helper()
	if out, err := g.cmd(remote).CombinedOutput(); err != nil {
		g.b.Fatalf("in the guest: %s: %v\n%s", remote, err, out)
	}
}

// deleteWorkspaceRecord removes a VM's workspace row from the daemon's
// store, so the VM can be given another: a VM has one workspace, and
// nothing else of it is kept outside the row (SQLite in WAL mode takes
// this write beside the daemon's).
func deleteWorkspaceRecord(b *testing.B, e *vmEnv, vmID string) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(e.home, ".local", "state", "banger", "banger.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM workspaces WHERE vm_id = ?`, vmID); err != nil {
		b.Fatal(err)
	}
}

// pipeline runs from | to, and fails the benchmark if either fails.
func pipeline(b *testing.B, from, to *exec.Cmd) {
	b.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	var errFrom, errTo bytes.Buffer
	from.Stdout, from.Stderr = w, &errFrom
	to.Stdin, to.Stderr = r, &errTo
	if err := from.Start(); err != nil {
		b.Fatal(err)
	}
	if err := to.Start(); err != nil {
		b.Fatal(err)
	}
	w.Close()
	r.Close()
	e1, e2 := from.Wait(), to.Wait()
	if e1 != nil || e2 != nil {
		b.Fatalf("%s | %s: %v %v\n%s%s", from, to, e1, e2, errFrom.String(), errTo.String())
	}
}

func runCmd(b *testing.B, name string, args ...string) {
	b.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		b.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
