package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"banger/internal/lockfile"
	"banger/internal/testutil/testimage"
)

// The generated repository the workspace benchmarks prepare: genFiles
// files at HEAD holding about genBytes of content, genCommits commits.
// The first commit adds the bulk of it; each later one changes three of
// the small notes files. Changing any of these makes a new cache entry:
// genRepoVersion names them.
const (
	genRepoVersion = "v1-20000f-300MB-5000c"
	genNotes       = 200
	genFiles       = 20000
	genBulk        = genFiles - genNotes
	genBytes       = 300 << 20
	genCommits     = 5000
	// genRandom of every genChunk bytes are random, the rest words: the
	// content compresses to about half, like a mix of source and assets.
	genChunk  = 1536
	genRandom = 512
)

// benchRepoIdentity keeps the machine's git configuration out of the
// benchmark (the daemon started after it inherits it too) and gives git
// an identity.
func benchRepoIdentity(b *testing.B) {
	cfg := filepath.Join(b.TempDir(), "gitconfig")
	if err := os.WriteFile(cfg, []byte("[user]\n\tname = Bench\n\temail = bench@example.com\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Setenv("GIT_CONFIG_GLOBAL", cfg)
	b.Setenv("GIT_CONFIG_NOSYSTEM", "1")
}

// hostGit runs git in dir and returns its trimmed output.
func hostGit(b *testing.B, dir string, args ...string) string {
	b.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	if err != nil {
		b.Fatalf("git %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return strings.TrimSpace(string(out))
}

// dirtyRepo gives repo uncommitted work for an overlay: a change to a
// tracked file and an untracked file.
func dirtyRepo(b *testing.B, repo, tracked string) {
	b.Helper()
	f, err := os.OpenFile(filepath.Join(repo, tracked), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		b.Fatal(err)
	}
	fmt.Fprintln(f, "an uncommitted change for the benchmark")
	f.Close()
	if err := os.WriteFile(filepath.Join(repo, "bench-untracked.txt"), []byte("untracked\n"), 0o644); err != nil {
		b.Fatal(err)
	}
}

// selfRepo is a clone of this project's repository (its committed
// history, not the work tree people are changing) at dir/banger, with
// uncommitted work of its own. It is cloned as from a server (file://):
// one pack, as a user's clone is, where a local clone would copy the
// object files of the checkout it comes from as they are (here ~750
// loose objects).
func selfRepo(b *testing.B, dir string) string {
	b.Helper()
	root := hostGit(b, ".", "rev-parse", "--show-toplevel")
	repo := filepath.Join(dir, "banger")
	if out, err := exec.Command("git", "clone", "-q", "file://"+root, repo).CombinedOutput(); err != nil {
		b.Fatalf("clone %s: %v\n%s", root, err, out)
	}
	dirtyRepo(b, repo, "README.md")
	return repo
}

// generatedRepo is the generated repository, made once per
// genRepoVersion and kept in the test cache (it is only ever read).
func generatedRepo(b *testing.B) string {
	b.Helper()
	cache := filepath.Join(testimage.CacheDir(), "bench-repos")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	lock, err := lockfile.Acquire(ctx, filepath.Join(cache, "generate.lock"))
	if err != nil {
		b.Fatal(err)
	}
	defer lock.Release()
	final := filepath.Join(cache, genRepoVersion)
	repo := filepath.Join(final, "bigrepo")
	if _, err := os.Stat(repo); err == nil {
		return repo
	}
	tmp, err := os.MkdirTemp(cache, "generating-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	t0 := time.Now()
	gen := filepath.Join(tmp, "bigrepo")
	hostGit(b, tmp, "init", "-q", "-b", "main", gen)
	imp := exec.Command("git", "-C", gen, "fast-import", "--quiet")
	stdin, err := imp.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	var stderr strings.Builder
	imp.Stderr = &stderr
	if err := imp.Start(); err != nil {
		b.Fatal(err)
	}
	werr := writeGenStream(stdin)
	stdin.Close()
	if err := imp.Wait(); err != nil || werr != nil {
		b.Fatalf("git fast-import: %v %v\n%s", err, werr, stderr.String())
	}
	hostGit(b, gen, "reset", "-q", "--hard")
	dirtyRepo(b, gen, "notes/n000.txt")
	if err := os.Rename(tmp, final); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %s in %s", repo, time.Since(t0).Round(time.Second))
	return repo
}

// writeGenStream writes the generated history as a git fast-import
// stream: the bulk commit, then small commits.
func writeGenStream(out io.Writer) error {
	w := bufio.NewWriterSize(out, 1<<20)
	rng := rand.New(rand.NewChaCha8([32]byte{'b', 'a', 'n', 'g', 'e', 'r'}))
	when := int64(1_700_000_000)
	commit := func(msg string) {
		when += 60
		fmt.Fprintf(w, "commit refs/heads/main\ncommitter Bench <bench@example.com> %d +0000\ndata %d\n%s\n", when, len(msg), msg)
	}
	file := func(path string, content []byte) {
		fmt.Fprintf(w, "M 100644 inline %s\ndata %d\n", path, len(content))
		w.Write(content)
		w.WriteByte('\n')
	}
	commit("the bulk of the repository")
	buf := make([]byte, 0, 32<<10)
	mean := genBytes / genBulk
	for i := range genBulk {
		size := mean/3 + (i*7919)%(mean*4/3) // from a third to five thirds of the mean
		buf = genContent(rng, buf[:0], size)
		file(fmt.Sprintf("data/d%03d/f%05d.dat", i%100, i), buf)
	}
	for i := range genNotes {
		file(fmt.Sprintf("notes/n%03d.txt", i), genWords(rng, nil, 200+rng.IntN(800)))
	}
	for n := 2; n <= genCommits; n++ {
		commit(fmt.Sprintf("change %d", n))
		for k := range 3 {
			file(fmt.Sprintf("notes/n%03d.txt", (n*3+k)%genNotes), genWords(rng, buf[:0], 200+rng.IntN(800)))
		}
	}
	return w.Flush()
}

// genContent appends size bytes: random chunks between runs of words.
func genContent(rng *rand.Rand, buf []byte, size int) []byte {
	for len(buf) < size {
		n := min(genRandom, size-len(buf))
		for range n {
			buf = append(buf, byte(rng.Uint32()))
		}
		buf = genWords(rng, buf, min(len(buf)+genChunk-genRandom, size)-len(buf))
	}
	return buf
}

var genVocabulary = strings.Fields(`the of and to in is for on that with as by it from at be this are or an
	func return err nil if else struct type var const package import range map string int byte
	vm disk guest host image kernel overlay bridge tap socket daemon helper workspace harvest`)

// genWords appends n bytes of words and newlines.
func genWords(rng *rand.Rand, buf []byte, n int) []byte {
	end := len(buf) + n
	for len(buf) < end {
		w := genVocabulary[rng.IntN(len(genVocabulary))]
		if rng.IntN(12) == 0 {
			buf = append(buf, '\n')
		} else {
			buf = append(buf, ' ')
		}
		buf = append(buf, w...)
	}
	return buf[:end]
}
