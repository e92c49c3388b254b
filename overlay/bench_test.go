package overlay

// This file measures Sync after endpoints move, on a real device in a throwaway namespace: a
// network of 200 remote endpoints on 4 peer nodes, of which 1 or 100 move to another node between
// two Syncs (each iteration moves them there or back).

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"testing"
)

const benchEndpoints = 200

func BenchmarkSyncMoved1(b *testing.B)   { benchmarkSyncMoved(b, 1) }
func BenchmarkSyncMoved100(b *testing.B) { benchmarkSyncMoved(b, 100) }

func benchmarkSyncMoved(b *testing.B, moved int) {
	requireRoot(b)
	node := newNetns(b)
	inNetns(b, node, func() error { return addBridge(testBridge, testMTU, netip.Prefix{}) })
	local := netip.MustParseAddr("198.18.0.1")
	m, err := New(Config{LocalVTEP: local, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	var peers []netip.Addr
	for p := local.Next(); len(peers) < 4; p = p.Next() {
		peers = append(peers, p)
	}
	// states[0] has endpoint i on peer i%4; states[1] has the first `moved` on the next peer.
	var states [2]Desired
	for s := range states {
		states[s] = Desired{Network: testNetwork, Peers: peers}
		for i := range benchEndpoints {
			ip := taskIP(i + 2)
			vtep := peers[i%len(peers)]
			if s == 1 && i < moved {
				vtep = peers[(i+1)%len(peers)]
			}
			states[s].Endpoints = append(states[s].Endpoints, Endpoint{IP: ip, MAC: macOfIP(ip), VTEP: vtep})
		}
	}

	inNetns(b, node, func() error {
		if _, err := m.Sync(states[0]); err != nil {
			return err
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			ch, err := m.Sync(states[(i+1)%2])
			if err != nil {
				return err
			}
			if ch != (Changes{Replaced: moved}) {
				return fmt.Errorf("Sync changed %+v, want %d replaced", ch, moved)
			}
		}
		b.StopTimer()
		return nil
	})
}
