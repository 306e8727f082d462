package tappool

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"banger/internal/opid"
)

// fakeAllocator stands in for banger-helper. It hands out bgtapN names,
// counts calls, can fail or block on demand, and records every misuse —
// deleting a tap twice or one it never made — as a problem the test
// fails on.
type fakeAllocator struct {
	mu       sync.Mutex
	next     int
	live     map[string]bool
	creates  int
	deletes  int
	opIDs    []string // the op id on each CreateTap's context
	failWith error    // when set, CreateTap and DeleteTap fail with it
	problems []string

	// gate, when set, blocks each CreateTap until it receives; entered
	// is sent to as each blocked call starts.
	gate    chan struct{}
	entered chan struct{}
}

func newFakeAllocator(t *testing.T, existing ...string) *fakeAllocator {
	f := &fakeAllocator{live: make(map[string]bool)}
	for _, name := range existing {
		f.live[name] = true
	}
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, p := range f.problems {
			t.Error(p)
		}
	})
	return f
}

var errHelperDown = errors.New("banger-helper is not running")

func (f *fakeAllocator) CreateTap(ctx context.Context) (string, error) {
	f.mu.Lock()
	gate, entered := f.gate, f.entered
	f.mu.Unlock()
	if gate != nil {
		entered <- struct{}{}
		<-gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates++
	f.opIDs = append(f.opIDs, opid.From(ctx))
	if f.failWith != nil {
		return "", f.failWith
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	name := fmt.Sprintf("bgtap%d", f.next)
	f.next++
	f.live[name] = true
	return name, nil
}

func (f *fakeAllocator) DeleteTap(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deletes++
	if f.failWith != nil {
		return f.failWith
	}
	if !f.live[name] {
		f.problems = append(f.problems, fmt.Sprintf("DeleteTap(%q): no such tap (deleted twice, or never created)", name))
		return errors.New("no such tap")
	}
	delete(f.live, name)
	return nil
}

func (f *fakeAllocator) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failWith = err
}

// block makes later CreateTap calls wait for release.
func (f *fakeAllocator) block() (entered <-chan struct{}, release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gate = make(chan struct{})
	f.entered = make(chan struct{}, 16)
	gate := f.gate
	return f.entered, func() {
		f.mu.Lock()
		f.gate = nil
		f.mu.Unlock()
		close(gate)
	}
}

func (f *fakeAllocator) liveTaps() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	for name := range f.live {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func (f *fakeAllocator) createOpIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.opIDs)
}

func (f *fakeAllocator) counts() (creates, deletes int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.creates, f.deletes
}

// list is an Adopt lister returning the fake's live taps except skip.
func (f *fakeAllocator) list(skip ...string) func(context.Context) ([]string, error) {
	return func(context.Context) ([]string, error) {
		var names []string
		for _, name := range f.liveTaps() {
			if !slices.Contains(skip, name) {
				names = append(names, name)
			}
		}
		return names, nil
	}
}
