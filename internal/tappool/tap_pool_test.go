package tappool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"banger/internal/errdefs"
	"banger/internal/oplog"
)

// startPool runs p's refill loop for the test and closes the pool at the
// end if the test has not.
func startPool(t *testing.T, p *Pool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Start(ctx); close(done) }()
	t.Cleanup(func() {
		p.Close(context.Background())
		cancel()
		<-done
	})
}

// waitFor polls cond until it holds or a few seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func waitReady(t *testing.T, p *Pool, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("the pool to hold %d taps", n), func() bool { return p.Stats().Ready == n })
}

// syncBuffer is a log destination the refill loop and the test can share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestTakeRefills(t *testing.T) {
	var logs syncBuffer
	f := newFakeAllocator(t)
	logger, _, _ := oplog.NewLogger(&logs, "info")
	p := New(f, 2, logger)
	startPool(t, p)
	waitReady(t, p, 2)

	name, hit, err := p.Take(context.Background())
	if err != nil || !hit || name != "bgtap0" {
		t.Fatalf("Take = %q, %v, %v; want the oldest ready tap, a hit", name, hit, err)
	}
	waitReady(t, p, 2)
	if creates, _ := f.counts(); creates != 3 {
		t.Errorf("creates = %d, want 3 (2 to fill, 1 to refill)", creates)
	}
	st := p.Stats()
	if st != (Stats{Size: 2, Ready: 2, Hits: 1}) {
		t.Errorf("Stats = %+v", st)
	}

	// Background creates run under minted op ids, and the log says which.
	opID := regexp.MustCompile(`^op-[0-9a-f]{12}$`)
	ids := f.createOpIDs()
	for i, id := range ids {
		if !opID.MatchString(id) {
			t.Errorf("create %d ran under op id %q", i, id)
		}
	}
	if ids[2] == ids[0] {
		t.Errorf("the refill after Take reused the first refill's op id %s", ids[0])
	}
	record := `"msg":"tap pool refilled","op_id":"` + ids[2] + `"`
	waitFor(t, "the refill's log record", func() bool { return strings.Contains(logs.String(), record) })
}

func TestTakeMissCreatesWhenEmpty(t *testing.T) {
	f := newFakeAllocator(t)
	p := New(f, 2, nil) // never started: nothing refills
	name, hit, err := p.Take(context.Background())
	if err != nil || hit || name == "" {
		t.Fatalf("Take = %q, %v, %v; want a miss with a new tap", name, hit, err)
	}
	if st := p.Stats(); st.Misses != 1 || st.Hits != 0 || st.Ready != 0 {
		t.Errorf("Stats = %+v", st)
	}

	f.setFail(errHelperDown)
	if _, _, err := p.Take(context.Background()); !errors.Is(err, errHelperDown) {
		t.Errorf("Take with the helper down = %v", err)
	}
}

// TestNeverHandsOutTwice has many goroutines take and return taps while
// the pool refills. No tap may be held by two of them at once, and at the
// end every tap the fake made is accounted for.
func TestNeverHandsOutTwice(t *testing.T) {
	f := newFakeAllocator(t)
	p := New(f, 4, nil)
	startPool(t, p)

	var mu sync.Mutex
	held := map[string]bool{}
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 50 {
				name, _, err := p.Take(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if held[name] {
					t.Errorf("%s handed out while another goroutine holds it", name)
				}
				held[name] = true
				mu.Unlock()
				if r.IntN(4) == 0 {
					time.Sleep(time.Duration(r.IntN(200)) * time.Microsecond)
				}
				mu.Lock()
				delete(held, name)
				mu.Unlock()
				if err := p.Return(context.Background(), name); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()

	st := p.Stats()
	if st.Ready > st.Size || st.Hits+st.Misses != 32*50 {
		t.Errorf("Stats = %+v", st)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Everything was returned, so after Close nothing may be left.
	if live := f.liveTaps(); len(live) != 0 {
		t.Errorf("taps left after Close: %v", live)
	}
}

func TestReturn(t *testing.T) {
	f := newFakeAllocator(t)
	p := New(f, 1, nil)
	ctx := context.Background()
	a, _, _ := p.Take(ctx)
	b, _, _ := p.Take(ctx)

	if err := p.Return(ctx, a); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Ready != 1 {
		t.Fatalf("after returning %s into an empty pool of 1: %+v", a, st)
	}
	// The pool is full: the next one is deleted.
	if err := p.Return(ctx, b); err != nil {
		t.Fatal(err)
	}
	if live := f.liveTaps(); !slices.Equal(live, []string{a}) {
		t.Errorf("live taps = %v, want only %s", live, a)
	}
	// Returning a tap the pool holds already changes nothing.
	if err := p.Return(ctx, a); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Ready != 1 {
		t.Errorf("a second Return of %s: %+v", a, st)
	}
	if name, hit, _ := p.Take(ctx); name != a || !hit {
		t.Errorf("Take = %s, %v; want the returned %s, a hit", name, hit, a)
	}

	if err := p.Return(ctx, ""); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Return(\"\") = %v", err)
	}
	f.setFail(errHelperDown)
	p2 := New(f, 0, nil)
	if err := p2.Return(ctx, a); !errors.Is(err, errHelperDown) || !strings.Contains(err.Error(), a) {
		t.Errorf("Return with a failing delete = %v", err)
	}
}

func TestAdopt(t *testing.T) {
	f := newFakeAllocator(t, "bgtap10", "bgtap11", "bgtap12", "bgtap13")
	p := New(f, 2, nil)
	ctx := context.Background()

	// bgtap13 is a VM's: the lister leaves it out. Duplicates are ignored.
	list := func(ctx context.Context) ([]string, error) {
		return []string{"bgtap10", "bgtap11", "bgtap10", "bgtap12"}, nil
	}
	adopted, deleted, err := p.Adopt(ctx, list)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(adopted, []string{"bgtap10", "bgtap11"}) || !slices.Equal(deleted, []string{"bgtap12"}) {
		t.Errorf("Adopt = %v, %v; want 2 adopted, the third deleted", adopted, deleted)
	}
	if live := f.liveTaps(); !slices.Equal(live, []string{"bgtap10", "bgtap11", "bgtap13"}) {
		t.Errorf("live taps = %v", live)
	}
	if name, hit, _ := p.Take(ctx); name != "bgtap10" || !hit {
		t.Errorf("Take = %s, %v; want adopted bgtap10", name, hit)
	}

	// Adopting again skips what the pool holds, ready or handed out.
	adopted, deleted, err = p.Adopt(ctx, f.list("bgtap13"))
	if err != nil || len(adopted) != 0 || len(deleted) != 0 {
		t.Errorf("second Adopt = %v, %v, %v; want nothing to do", adopted, deleted, err)
	}
	if st := p.Stats(); st.Ready != 1 {
		t.Errorf("Stats = %+v", st)
	}

	listErr := errors.New("status failed")
	if _, _, err := p.Adopt(ctx, func(context.Context) ([]string, error) { return nil, listErr }); !errors.Is(err, listErr) {
		t.Errorf("Adopt with a failing lister = %v", err)
	}
}

// TestAdoptWaitsForCreates checks that Adopt lists taps only while no
// create is in flight: a tap being made for a Take must not be adopted.
func TestAdoptWaitsForCreates(t *testing.T) {
	f := newFakeAllocator(t)
	p := New(f, 2, nil)
	ctx := context.Background()
	entered, release := f.block()

	took := make(chan string)
	go func() {
		name, _, err := p.Take(ctx)
		if err != nil {
			t.Error(err)
		}
		took <- name
	}()
	<-entered

	adoptDone := make(chan []string)
	go func() {
		adopted, _, err := p.Adopt(ctx, f.list())
		if err != nil {
			t.Error(err)
		}
		adoptDone <- adopted
	}()
	select {
	case <-adoptDone:
		t.Fatal("Adopt listed taps while a create was in flight")
	case <-time.After(50 * time.Millisecond):
	}
	release()
	name := <-took
	if adopted := <-adoptDone; len(adopted) != 0 {
		t.Errorf("Adopt took %v while %s was handed out", adopted, name)
	}
}

func TestCloseDeletesReadyTapsOnly(t *testing.T) {
	f := newFakeAllocator(t)
	p := New(f, 2, nil)
	startPool(t, p)
	ctx := context.Background()
	waitReady(t, p, 2)
	inUse, _, err := p.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitReady(t, p, 2)

	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if live := f.liveTaps(); !slices.Equal(live, []string{inUse}) {
		t.Errorf("live taps after Close = %v, want only the VM's %s", live, inUse)
	}
	if st := p.Stats(); st.Ready != 0 {
		t.Errorf("Stats after Close = %+v", st)
	}
	if err := p.Close(ctx); err != nil {
		t.Errorf("second Close = %v", err)
	}

	if _, _, err := p.Take(ctx); !errors.Is(err, ErrClosed) || !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("Take after Close = %v", err)
	}
	if _, _, err := p.Adopt(ctx, f.list()); !errors.Is(err, ErrClosed) {
		t.Errorf("Adopt after Close = %v", err)
	}
	// The VM's tap comes back after Close: deleted, not pooled.
	if err := p.Return(ctx, inUse); err != nil {
		t.Fatal(err)
	}
	if live := f.liveTaps(); len(live) != 0 {
		t.Errorf("live taps = %v", live)
	}
}

// TestCloseWaitsForRefill closes the pool while the refill loop waits on
// a create; the tap that create makes must not outlive the pool.
func TestCloseWaitsForRefill(t *testing.T) {
	f := newFakeAllocator(t)
	entered, release := f.block()
	p := New(f, 1, nil)
	startPool(t, p)
	<-entered

	closed := make(chan error)
	go func() { closed <- p.Close(context.Background()) }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a create was in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	release()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if creates, _ := f.counts(); creates != 1 {
		t.Errorf("creates = %d, want 1", creates)
	}
	if live := f.liveTaps(); len(live) != 0 {
		t.Errorf("taps left after Close: %v", live)
	}

	// A Close that runs out of time says so.
	f2 := newFakeAllocator(t)
	entered2, release2 := f2.block()
	defer release2()
	p2 := New(f2, 1, nil)
	startPool(t, p2)
	<-entered2
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := p2.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close with a stuck create = %v", err)
	}
}

func TestRefillBacksOff(t *testing.T) {
	f := newFakeAllocator(t)
	f.setFail(errHelperDown)
	p := New(f, 2, nil)
	p.minBackoff, p.maxBackoff = 10*time.Millisecond, 40*time.Millisecond
	startPool(t, p)

	waitFor(t, "a refill error", func() bool { return p.Stats().LastError != "" })
	if got := p.Stats().LastError; !strings.Contains(got, errHelperDown.Error()) {
		t.Errorf("LastError = %q", got)
	}
	// Takes while it backs off do not make the loop retry at once.
	for range 20 {
		p.Take(context.Background())
	}
	time.Sleep(300 * time.Millisecond)
	// Back-off 10, 20, 40, 40, … ms: at most about 10 attempts in
	// 300ms, plus the 20 Takes' own creates. Without back-off, thousands.
	if creates, _ := f.counts(); creates > 20+12 {
		t.Errorf("%d creates in 300ms with the helper down: the refill loop is not backing off", creates)
	}

	f.setFail(nil)
	waitReady(t, p, 2)
	if st := p.Stats(); st.LastError != "" || st.Misses != 20 {
		t.Errorf("Stats after the helper came back = %+v", st)
	}
}

func TestNextBackoff(t *testing.T) {
	lo, hi := DefaultMinBackoff, DefaultMaxBackoff
	for _, tc := range []struct{ prev, want time.Duration }{
		{0, 500 * time.Millisecond},
		{500 * time.Millisecond, time.Second},
		{time.Second, 2 * time.Second},
		{16 * time.Second, 30 * time.Second},
		{30 * time.Second, 30 * time.Second},
	} {
		if got := nextBackoff(tc.prev, lo, hi); got != tc.want {
			t.Errorf("nextBackoff(%v) = %v, want %v", tc.prev, got, tc.want)
		}
	}
}

func TestSizeZeroIsNoPool(t *testing.T) {
	f := newFakeAllocator(t)
	p := New(f, 0, nil)
	startPool(t, p)
	ctx := context.Background()
	for range 3 {
		name, hit, err := p.Take(ctx)
		if err != nil || hit {
			t.Fatalf("Take = %q, %v, %v; want a miss", name, hit, err)
		}
		if err := p.Return(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if creates, deletes := f.counts(); creates != 3 || deletes != 3 {
		t.Errorf("creates, deletes = %d, %d; want 3, 3 (nothing kept)", creates, deletes)
	}
	if st := p.Stats(); st != (Stats{Misses: 3}) {
		t.Errorf("Stats = %+v", st)
	}
	// Adopting into no pool deletes every leftover.
	f2 := newFakeAllocator(t, "bgtap7")
	adopted, deleted, err := New(f2, 0, nil).Adopt(ctx, f2.list())
	if err != nil || len(adopted) != 0 || !slices.Equal(deleted, []string{"bgtap7"}) {
		t.Errorf("Adopt into size 0 = %v, %v, %v", adopted, deleted, err)
	}
}

// TestLastErrorClearsWhenFull: an error from a refill that failed does
// not linger once the pool is full another way.
func TestLastErrorClearsWhenFull(t *testing.T) {
	f := newFakeAllocator(t, "bgtap9")
	f.setFail(errHelperDown)
	p := New(f, 1, nil)
	p.minBackoff, p.maxBackoff = time.Minute, time.Minute // no retry during the test
	startPool(t, p)
	waitFor(t, "a refill error", func() bool { return p.Stats().LastError != "" })

	f.setFail(nil)
	if err := p.Return(context.Background(), "bgtap9"); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Ready != 1 || st.LastError != "" {
		t.Errorf("Stats of a full pool = %+v", st)
	}
}
