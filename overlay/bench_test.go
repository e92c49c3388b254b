package overlay

// This file measures programming endpoints that move, on a real device in a throwaway namespace:
// Sync of a network of 200 remote endpoints on 4 peer nodes, of which 1 or 100 move to another
// node between two Syncs (each iteration moves them there or back); and one endpoint moved, by
// Update and by Sync, in networks of 1,000 and 100,000 endpoints on 100 peer nodes, where Update
// should cost the same at both sizes and Sync grows with the network.

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
)

const benchEndpoints = 200

func BenchmarkSyncMoved1(b *testing.B)   { benchmarkSyncMoved(b, 1) }
func BenchmarkSyncMoved100(b *testing.B) { benchmarkSyncMoved(b, 100) }

func benchmarkSyncMoved(b *testing.B, moved int) {
	node, local, m := benchNode(b)
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

// The sizes of the one-endpoint-moved benchmarks, and their peer nodes.
var oneMovedSizes = []int{1_000, 100_000}

const oneMovedPeers = 100

func BenchmarkUpdateOneMoved(b *testing.B) {
	for _, n := range oneMovedSizes {
		b.Run(fmt.Sprintf("endpoints=%d", n), func(b *testing.B) {
			benchmarkOneMoved(b, n, func(m *Manager, d Desired, moved Endpoint) (Changes, error) {
				return m.Update(d.Network.ID, EndpointUpdate{Set: []Endpoint{moved}})
			})
		})
	}
}

func BenchmarkSyncOneMoved(b *testing.B) {
	for _, n := range oneMovedSizes {
		b.Run(fmt.Sprintf("endpoints=%d", n), func(b *testing.B) {
			benchmarkOneMoved(b, n, func(m *Manager, d Desired, _ Endpoint) (Changes, error) {
				return m.Sync(d)
			})
		})
	}
}

// benchmarkOneMoved Syncs a network of n remote endpoints outside the timer, then times program
// moving its first endpoint to the next peer and back, one move per iteration. program gets the
// network's whole desired state after the move and the moved endpoint.
func benchmarkOneMoved(b *testing.B, n int, program func(*Manager, Desired, Endpoint) (Changes, error)) {
	node, local, m := benchNode(b)
	d, peers := oneMovedNetwork(local, n)
	// states[0] is d; states[1] has the first endpoint at the next peer.
	states := [2]Desired{d, d}
	states[1].Endpoints = slices.Clone(d.Endpoints)
	states[1].Endpoints[0].VTEP = peers[1]

	inNetns(b, node, func() error {
		if _, err := m.Sync(states[0]); err != nil {
			return err
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			to := states[i%2]
			ch, err := program(m, to, to.Endpoints[0])
			if err != nil {
				return err
			}
			if ch != (Changes{Replaced: 1}) {
				return fmt.Errorf("moving one endpoint changed %+v, want 1 replaced", ch)
			}
		}
		return nil
	})
}

// oneMovedNetwork is a network of n remote endpoints, addresses from 10.0.0.2 up, endpoint i
// at peer i%oneMovedPeers, with its peers listed.
func oneMovedNetwork(local netip.Addr, n int) (Desired, []netip.Addr) {
	var peers []netip.Addr
	for p := local.Next(); len(peers) < oneMovedPeers; p = p.Next() {
		peers = append(peers, p)
	}
	d := Desired{Network: testNetwork, Peers: peers, Endpoints: make([]Endpoint, 0, n)}
	ip := netip.MustParseAddr("10.0.0.1")
	for i := range n {
		ip = ip.Next()
		d.Endpoints = append(d.Endpoints, Endpoint{IP: ip, MAC: macOfIP(ip), VTEP: peers[i%len(peers)]})
	}
	return d, peers
}

// benchNode is a fresh namespace with the network's bridge, this node's VTEP, and a Manager for it
// that logs nothing.
func benchNode(b *testing.B) (ns.NetNS, netip.Addr, *Manager) {
	requireRoot(b)
	node := newNetns(b)
	inNetns(b, node, func() error { return addBridge(testBridge, testMTU, netip.Prefix{}) })
	local := netip.MustParseAddr("198.18.0.1")
	m, err := New(Config{LocalVTEP: local, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	return node, local, m
}
