package nft

// Dataplane tests: real TCP connections through the programmed table on the test bed
// (testbed_test.go).

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"

	"github.com/shoal/shoal/mesh"
)

const connections = 300

func bedState() mesh.State {
	return mesh.State{
		VIPs: []mesh.VIP{
			{Service: "svc-web", Name: "web", Network: "testnet01", Addr: bedVIP, Backends: bedBackendIP},
			{Service: "svc-idle", Name: "idle", Network: "testnet01", Addr: bedEmptyVIP},
		},
		Ports: []mesh.Port{
			{Service: "svc-web", Name: "web", Protocol: mesh.TCP, Published: 8080, Mode: mesh.Ingress, Backends: []mesh.Backend{
				{Addr: bedBackendIP[0], Port: bedPort}, {Addr: bedBackendIP[1], Port: bedPort}, {Addr: bedBackendIP[2], Port: bedPort},
			}},
			{Service: "svc-local", Name: "local", Protocol: mesh.TCP, Published: 8081, Mode: mesh.Host, Backends: []mesh.Backend{
				{Addr: bedBackendIP[2], Port: bedPort},
			}},
			{Service: "svc-idle", Name: "idle", Protocol: mesh.TCP, Published: 8082, Mode: mesh.Ingress},
		},
		// The node's own address, not the bridge's (which every node holds): backends reach it
		// through their gateway, and replies come back.
		SNAT: bedNodeOut.Addr(),
	}
}

// countBackends counts the answers per backend and checks that each saw peer.
func countBackends(t *testing.T, answers []answer, peer netip.Addr) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for _, a := range answers {
		counts[a.backend]++
		if a.peer != peer {
			t.Errorf("%s saw the connection come from %s, want %s", a.backend, a.peer, peer)
		}
	}
	return counts
}

func TestDataplaneVIPBalancesOverEveryBackend(t *testing.T) {
	bed := newTestbed(t)
	b := newTestBalancer(t, Config{})
	syncIn(t, bed.node, b, bedState())

	// The dial succeeding means the replies came from the VIP: conntrack un-NATed them.
	counts := countBackends(t, dial(t, bed.client, bedVIP, bedPort, connections), bedClient.Addr())
	t.Logf("%d connections to the VIP: %v", connections, counts)
	if len(counts) != len(bedBackendIP) {
		t.Errorf("answered by %d backends, want %d", len(counts), len(bedBackendIP))
	}
	for name, c := range counts {
		if c < connections/5 {
			t.Errorf("%s answered %d of %d connections, want at least 20%%", name, c, connections)
		}
	}

	// A client in the node's own namespace goes through the output chain and leaves from the
	// SNAT address, the node's own (its source would otherwise be the VIP, which every node
	// holds: a backend on another node would answer its own node).
	if got := countBackends(t, dial(t, bed.node, bedVIP, bedPort, 3), bedNodeOut.Addr()); len(got) == 0 {
		t.Error("the node did not reach the VIP")
	}
}

// A backend that reaches its own VIP and is picked itself gets the connection from the bridge's
// address (it would drop a packet from its own); picked another, it keeps its own address.
func TestDataplaneVIPHairpinMasquerades(t *testing.T) {
	bed := newTestbed(t)
	b := newTestBalancer(t, Config{})
	syncIn(t, bed.node, b, bedState())
	self := 0
	for _, a := range dial(t, bed.backends[0], bedVIP, bedPort, 60) {
		want := bedBackendIP[0]
		if a.backend == "backend-0" {
			self++
			want = bedGateway.Addr()
		}
		if a.peer != want {
			t.Errorf("%s saw backend-0's connection come from %s, want %s", a.backend, a.peer, want)
		}
	}
	if self == 0 {
		t.Error("backend-0 never reached itself through the VIP in 60 connections")
	}
}

func TestDataplaneVIPWithoutBackendsRefuses(t *testing.T) {
	bed := newTestbed(t)
	b := newTestBalancer(t, Config{})
	syncIn(t, bed.node, b, bedState())
	for _, from := range []struct {
		name string
		do   func(func() error)
	}{
		{"client", func(fn func() error) { inNetns(t, bed.client, fn) }},
		{"node", func(fn func() error) { inNetns(t, bed.node, fn) }},
	} {
		from.do(func() error {
			_, err := dialOnce(netip.AddrPortFrom(bedEmptyVIP, bedPort))
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("from the %s, dial the VIP without backends = %v, want connection refused", from.name, err)
			}
			_, err = dialOnce(netip.AddrPortFrom(bedNodeOut.Addr(), 8082))
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("from the %s, dial the port without backends = %v, want connection refused", from.name, err)
			}
			return nil
		})
	}
}

func TestDataplaneIngressPortSNATsAndHostPortKeepsTheClient(t *testing.T) {
	bed := newTestbed(t)
	b := newTestBalancer(t, Config{})
	syncIn(t, bed.node, b, bedState())

	// Ingress: answered on the node's own address, backends see the node's SNAT address.
	counts := countBackends(t, dial(t, bed.outside, bedNodeOut.Addr(), 8080, 60), bedNodeOut.Addr())
	t.Logf("60 connections to the ingress port: %v", counts)
	if len(counts) != len(bedBackendIP) {
		t.Errorf("ingress port answered by %d backends, want %d", len(counts), len(bedBackendIP))
	}
	// From the node itself, on its own address; loopback is not taken over.
	countBackends(t, dial(t, bed.node, bedNodeOut.Addr(), 8080, 3), bedNodeOut.Addr())
	inNetns(t, bed.node, func() error {
		_, err := dialOnce(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 8080))
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial 127.0.0.1:8080 on the node = %v, want connection refused (nothing listens there)", err)
		}
		return nil
	})
	// Host: the local task sees the outside client's own address.
	counts = countBackends(t, dial(t, bed.outside, bedNodeOut.Addr(), 8081, 10), bedOutside.Addr())
	if counts["backend-2"] != 10 {
		t.Errorf("host port answers %v, want backend-2 only", counts)
	}
}

func TestDataplaneHashKeepsAClientOnOneBackend(t *testing.T) {
	bed := newTestbed(t)
	b := newTestBalancer(t, Config{Selection: mesh.Hash})
	syncIn(t, bed.node, b, bedState())
	counts := countBackends(t, dial(t, bed.client, bedVIP, bedPort, 30), bedClient.Addr())
	if len(counts) != 1 {
		t.Errorf("one client reached backends %v with hash selection, want one backend", counts)
	}
}
