package helper

import (
	"context"
	"testing"
	"time"

	"banger/internal/helperapi"
	"banger/internal/helperclient"
	"banger/internal/hostnet"
	"banger/internal/tappool"
	"banger/internal/testutil/netns"
)

// BenchmarkTapCreateDelete/helper is a tap.create and a tap.delete through
// banger-helper (RPC, authorization, records written to disk, netlink);
// /pool-hit is a Take and Return on a warm tap pool, what a VM start pays
// for its tap; /raw is the kernel work of creating and deleting a tap —
// hostnet.CreateTap and DeleteLink — done directly, in the same namespace,
// in the same run. Ratios against /raw are the overheads.
func BenchmarkTapCreateDelete(b *testing.B) {
	ns := netns.New(b)
	h := newHelperDir(b, ns, 0)
	h.start()
	if err := h.call("op-0000000bench", helperapi.MethodBridgeEnsure, nil, nil); err != nil {
		b.Fatal(err)
	}
	client := helperclient.Client{Socket: h.socket}

	b.Run("helper", func(b *testing.B) {
		ctx := context.Background()
		for b.Loop() {
			name, err := client.CreateTap(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if err := client.DeleteTap(ctx, name); err != nil {
				b.Fatal(err)
			}
		}
	})
	// A pool hit: what a VM start pays for its tap when the pool is warm.
	b.Run("pool-hit", func(b *testing.B) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		pool := tappool.New(client, 2, nil)
		go pool.Start(ctx)
		for pool.Stats().Ready < 2 {
			time.Sleep(5 * time.Millisecond)
		}
		for b.Loop() {
			name, hit, err := pool.Take(ctx)
			if err != nil || !hit {
				b.Fatalf("take: hit=%v err=%v", hit, err)
			}
			if err := pool.Return(ctx, name); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		pool.Close(context.Background())
	})
	b.Run("raw", func(b *testing.B) {
		err := ns.Do(func() error {
			for b.Loop() {
				if err := hostnet.CreateTap("bgtapraw", 0, "bench", "br-fc"); err != nil {
					return err
				}
				if err := hostnet.DeleteLink("bgtapraw"); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	})
}
