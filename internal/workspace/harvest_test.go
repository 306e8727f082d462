package workspace

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"banger/internal/api"
	"banger/internal/errdefs"
)

// guestCommit commits a new file in the guest's workspace.
func (e *env) guestCommit(name string) {
	e.t.Helper()
	guest := filepath.Join(e.home, "proj")
	os.WriteFile(filepath.Join(guest, name), []byte(name+"\n"), 0o644)
	e.git(guest, "add", name)
	e.git(guest, "commit", "-q", "-m", "add "+name)
}

// hostState is what a harvest must never change in the host repository.
func (e *env) hostState() string {
	return strings.Join([]string{
		e.git(e.repo, "rev-parse", "HEAD"), e.git(e.repo, "symbolic-ref", "HEAD"),
		e.git(e.repo, "status", "--porcelain"), e.git(e.repo, "stash", "list"),
		notBanger(e.git(e.repo, "for-each-ref", "--format=%(refname) %(objectname)")),
	}, "\n")
}

func TestHarvestRoundTrip(t *testing.T) {
	e := newEnv(t)
	e.dirty()
	e.addVM("dev")
	if _, err := e.prepare("dev", ""); err != nil {
		t.Fatal(err)
	}
	before := e.hostState()
	ctx := context.Background()
	res, err := e.s.Harvest(ctx, api.WorkspaceHarvestParams{Name: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.NoOp || len(res.Commits) != 0 || res.Uncommitted != 3 || res.Unsaved != 0 {
		t.Errorf("harvest before any commit: %+v, want a no-op with 3 uncommitted paths (the host's dirty work), none unsaved", res)
	}
	e.guestCommit("one")
	e.guestCommit("two")
	os.WriteFile(filepath.Join(e.home, "proj", "scratch"), []byte("made in the guest\n"), 0o644)
	res, err = e.s.Harvest(ctx, api.WorkspaceHarvestParams{Name: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Unsaved != 1 {
		t.Errorf("unsaved %d, want 1 (the scratch file; the host's own work and the commits are not)", res.Unsaved)
	}
	base := e.git(e.repo, "rev-parse", "HEAD")
	if res.NoOp || len(res.Commits) != 2 || res.Commits[0].Subject != "add two" || res.Base != base || res.Old != "" {
		t.Errorf("harvest: %+v", res)
	}
	if got := e.git(e.repo, "log", "--format=%s", base+"..banger/dev"); got != "add two\nadd one" {
		t.Errorf("host banger/dev holds %q past the base", got)
	}
	if after := e.hostState(); after != before {
		t.Errorf("the harvest changed the host repository:\nbefore\n%s\nafter\n%s", before, after)
	}
	if ws, _ := e.s.Show(ctx, "dev"); ws.HarvestedCommit != res.New {
		t.Errorf("harvest recorded %q, want %q", ws.HarvestedCommit, res.New)
	}
	again, err := e.s.Harvest(ctx, api.WorkspaceHarvestParams{Name: "dev"})
	if err != nil || !again.NoOp || again.New != res.New || len(again.Commits) != 2 {
		t.Errorf("harvest again: %+v, %v; want a no-op listing the branch's 2 commits", again, err)
	}
}

func TestHarvestWIP(t *testing.T) {
	e := newEnv(t)
	e.addVM("dev")
	if _, err := e.prepare("dev", ""); err != nil {
		t.Fatal(err)
	}
	guest := filepath.Join(e.home, "proj")
	os.WriteFile(filepath.Join(guest, "notes.txt"), []byte("half done\n"), 0o644)
	res, err := e.s.Harvest(context.Background(), api.WorkspaceHarvestParams{Name: "dev", WIP: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.WIPCommitted || res.Uncommitted != 0 || len(res.Commits) != 1 || res.Commits[0].Subject != "WIP from banger vm dev" {
		t.Errorf("wip harvest: %+v", res)
	}
	if got := e.git(e.repo, "show", "banger/dev:notes.txt"); got != "half done" {
		t.Errorf("host banger/dev:notes.txt = %q", got)
	}
}

func TestHarvestRefusesWhatTheGuestBroke(t *testing.T) {
	for name, tc := range map[string]struct {
		breakIt func(e *env, guest string)
		want    string
	}{
		"branch deleted": {func(e *env, guest string) {
			e.git(guest, "checkout", "-q", "-b", "other")
			e.git(guest, "branch", "-D", "banger/dev")
		}, "the guest has no branch banger/dev any more"},
		"history rewritten": {func(e *env, guest string) {
			e.git(guest, "checkout", "-q", "--orphan", "tmp")
			e.git(guest, "commit", "-q", "-m", "unrelated")
			e.git(guest, "branch", "-f", "banger/dev", "tmp")
		}, "rewrote its history"},
		"workspace gone": {func(e *env, guest string) {
			os.RemoveAll(guest)
		}, "the workspace directory is gone"},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.addVM("dev")
			if _, err := e.prepare("dev", ""); err != nil {
				t.Fatal(err)
			}
			before := e.hostState()
			tc.breakIt(e, filepath.Join(e.home, "proj"))
			_, err := e.s.Harvest(context.Background(), api.WorkspaceHarvestParams{Name: "dev"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("harvest: %v, want an error containing %q", err, tc.want)
			}
			if after := e.hostState(); after != before {
				t.Errorf("host changed:\n%s\n%s", before, after)
			}
			if out := e.git(e.repo, "branch", "--list", "banger/*"); out != "" {
				t.Errorf("host has %q", out)
			}
		})
	}
}

func TestHarvestBundleCap(t *testing.T) {
	e := newEnv(t)
	e.s.maxBundle = 64 << 10
	e.addVM("dev")
	if _, err := e.prepare("dev", ""); err != nil {
		t.Fatal(err)
	}
	guest := filepath.Join(e.home, "proj")
	big := make([]byte, 1<<20)
	rand.Read(big) // incompressible, so the bundle is as big
	os.WriteFile(filepath.Join(guest, "big.bin"), big, 0o644)
	e.git(guest, "add", "big.bin")
	e.git(guest, "commit", "-q", "-m", "big")
	_, err := e.s.Harvest(context.Background(), api.WorkspaceHarvestParams{Name: "dev"})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "larger than the 64.0 KiB a harvest takes") {
		t.Fatalf("harvest of a bundle over the cap: %v", err)
	}
	if out := e.git(e.repo, "branch", "--list", "banger/*"); out != "" {
		t.Errorf("host has %q", out)
	}
	if left, _ := filepath.Glob(filepath.Join(e.s.tempDir, "*")); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestParseGuestStateRefusesNonsense(t *testing.T) {
	id := strings.Repeat("a", 40)
	good := "head refs/heads/banger/dev\ntip " + id + "\ndirty 3\nunsaved 1\nstray 2\n"
	if st, err := parseGuestState([]byte(good), 40); err != nil || st.tip != id || st.dirty != 3 || st.unsaved != 1 || st.stray != 2 {
		t.Fatalf("good answer: %+v, %v", st, err)
	}
	if st, err := parseGuestState([]byte("head detached\ntip missing\ndirty unknown\nunsaved 0\nstray unknown\n"), 40); err != nil || st.tip != "" || st.unsaved != unknown || st.stray != unknown {
		t.Errorf("missing branch, unknown counts: %+v, %v (want unknown, and unsaved unknown when dirty is)", st, err)
	}
	for _, bad := range []string{
		"", "head x\ntip " + id + "\n", "head x\ntip " + id + "\ndirty 3\nunsaved 0\nstray 0\nextra\n",
		"head x\ntip " + id + "\ndirty 3\nunsaved -2\nstray 0\n", "head x\ntip " + id + "\ndirty 3\nunsaved 0\n",
		"head \x1b[31mred\ntip " + id + "\ndirty 3\nunsaved 0\nstray 0\n",
		"head x\ntip ../../etc\ndirty 3\n", "head x\ntip " + strings.Repeat("A", 40) + "\ndirty 3\n",
		"head x\ntip " + id[:39] + "\ndirty 3\n", "head x\ntip " + id + "\ndirty -1\n",
		"head x\ntip " + id + "\ndirty 99999999999\n", "tip " + id + "\nhead x\ndirty 1\n",
	} {
		if _, err := parseGuestState([]byte(bad), 40); err == nil {
			t.Errorf("parseGuestState(%q) accepted it", bad)
		}
	}
}

// notBanger drops the banger/* branches from for-each-ref's lines.
func notBanger(refs string) string {
	var keep []string
	for _, l := range strings.Split(refs, "\n") {
		if !strings.HasPrefix(l, "refs/heads/banger/") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// TestHarvestCountsStrayCommits: commits a harvest does not bring — on
// another branch, on a detached HEAD, in the stash — are counted, so
// banger run keeps the VM that holds them; commits on the workspace
// branch and what the guest was given are not.
func TestHarvestCountsStrayCommits(t *testing.T) {
	for name, tc := range map[string]struct {
		do   func(e *env, guest string)
		want int
	}{
		"none":           {func(e *env, guest string) { e.guestCommit("on-branch") }, 0},
		"another branch": {func(e *env, guest string) { e.git(guest, "switch", "-q", "-c", "feat"); e.guestCommit("x") }, 1},
		"detached": {func(e *env, guest string) {
			e.git(guest, "switch", "-q", "--detach")
			e.guestCommit("y")
			e.guestCommit("z")
		}, 2},
		"stash": {func(e *env, guest string) {
			os.WriteFile(filepath.Join(guest, "README"), []byte("stashed\n"), 0o644)
			e.git(guest, "stash", "-q")
		}, 2}, // a stash is two commits: the work tree's and the index's
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.addVM("dev")
			if _, err := e.prepare("dev", "full_copy"); err != nil {
				t.Fatal(err)
			}
			tc.do(e, filepath.Join(e.home, "proj"))
			res, err := e.s.Harvest(context.Background(), api.WorkspaceHarvestParams{Name: "dev"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Stray != tc.want {
				t.Errorf("stray %d, want %d (guest head %s)", res.Stray, tc.want, res.GuestHead)
			}
		})
	}
}

// TestHarvestCountsPaths: the dirty count is one per path whatever the
// path holds (a newline, a space), header lines git adds for an
// upstream are not paths, and a guest on the workspace branch gives
// its tip from git status alone.
func TestHarvestCountsPaths(t *testing.T) {
	e := newEnv(t)
	e.addVM("dev")
	if _, err := e.prepare("dev", ""); err != nil {
		t.Fatal(err)
	}
	guest := filepath.Join(e.home, "proj")
	e.guestCommit("one")
	e.git(guest, "config", "branch.banger/dev.remote", ".")
	e.git(guest, "config", "branch.banger/dev.merge", "refs/heads/banger/dev")
	ctx := context.Background()
	res, err := e.s.Harvest(ctx, api.WorkspaceHarvestParams{Name: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Uncommitted != 0 || res.Unsaved != 0 || res.Stray != 0 || len(res.Commits) != 1 || res.GuestHead != "refs/heads/banger/dev" {
		t.Errorf("clean guest with an upstream: %+v, want 1 commit, nothing uncommitted, head refs/heads/banger/dev", res)
	}
	for _, name := range []string{"two\nlines", "with space", "plain"} {
		if err := os.WriteFile(filepath.Join(guest, name), []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, err = e.s.Harvest(ctx, api.WorkspaceHarvestParams{Name: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Uncommitted != 3 || res.Unsaved != 3 {
		t.Errorf("3 new guest files: uncommitted %d, unsaved %d, want 3 and 3", res.Uncommitted, res.Unsaved)
	}
}
