package nft

// Benchmarks, each in a fresh network namespace: programming N VIPs of 10 backends from empty
// (one batch), one backend change with N VIPs programmed — by Sync of the whole State and by
// Update of the one VIP — and a Repair that reads N VIPs and finds nothing to fix. Targets:
// 10,000 VIPs programmed in under 5 s; one change in under 50 ms whatever N, the same by Update
// for 1,000 and 10,000 VIPs.

import (
	"fmt"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/shoal/shoal/mesh"
)

const benchBackends = 10

func BenchmarkProgram1000(b *testing.B)  { benchmarkProgram(b, 1000) }
func BenchmarkProgram10000(b *testing.B) { benchmarkProgram(b, 10000) }

func BenchmarkOneBackendChange1000(b *testing.B)  { benchmarkOneBackendChange(b, 1000) }
func BenchmarkOneBackendChange10000(b *testing.B) { benchmarkOneBackendChange(b, 10000) }

func BenchmarkOneEndpointUpdate1000(b *testing.B)  { benchmarkOneEndpointUpdate(b, 1000) }
func BenchmarkOneEndpointUpdate10000(b *testing.B) { benchmarkOneEndpointUpdate(b, 10000) }

func BenchmarkRepairClean1000(b *testing.B)  { benchmarkRepairClean(b, 1000) }
func BenchmarkRepairClean10000(b *testing.B) { benchmarkRepairClean(b, 10000) }

// benchState has n VIPs of benchBackends backends and no ports.
func benchState(n int) mesh.State {
	var s mesh.State
	for i := range n {
		s.VIPs = append(s.VIPs, testVIP(i, benchBackends))
	}
	return s
}

// inBenchNetns runs fn in a fresh namespace where nftables works.
func inBenchNetns(b *testing.B, fn func(n ns.NetNS) error) {
	n := nodeNetns(b)
	inNetns(b, n, func() error { return fn(n) })
}

func benchmarkProgram(b *testing.B, vips int) {
	s := benchState(vips)
	inBenchNetns(b, func(ns.NetNS) error {
		for b.Loop() {
			b.StopTimer()
			bal := newTestBalancer(b, Config{})
			if err := bal.Remove(); err != nil {
				return err
			}
			b.StartTimer()
			ch, err := bal.Sync(s)
			if err != nil {
				return err
			}
			if ch != (mesh.Changes{Added: vips, Rebuilt: true}) {
				return fmt.Errorf("Sync changed %+v, want %d added", ch, vips)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(vips), "ns/vip")
		return nil
	})
}

func benchmarkOneBackendChange(b *testing.B, vips int) {
	benchmarkOneChange(b, vips, "Sync", func(bal *Balancer, s mesh.State, _ int) (mesh.Changes, error) {
		return bal.Sync(s)
	})
}

func benchmarkOneEndpointUpdate(b *testing.B, vips int) {
	benchmarkOneChange(b, vips, "Update", func(bal *Balancer, s mesh.State, k int) (mesh.Changes, error) {
		return bal.Update(mesh.Update{VIPs: s.VIPs[k : k+1]})
	})
}

// benchmarkOneChange programs vips VIPs, then times program applying one change per iteration:
// one backend of VIP k replaced (backend 3 ↔ backend 10), k spread over the table; program gets
// the whole State after the change and k.
func benchmarkOneChange(b *testing.B, vips int, what string, program func(*Balancer, mesh.State, int) (mesh.Changes, error)) {
	s := benchState(vips)
	inBenchNetns(b, func(ns.NetNS) error {
		bal := newTestBalancer(b, Config{})
		if _, err := bal.Sync(s); err != nil {
			return err
		}
		i := 0
		for b.Loop() {
			k := (i * 7919) % vips
			s.VIPs[k].Backends[3] = backendIP(k, 3+(i/vips+1)%2*(benchBackends-3))
			ch, err := program(bal, s, k)
			if err != nil {
				return err
			}
			if ch != (mesh.Changes{Updated: 1}) {
				return fmt.Errorf("%s changed %+v, want 1 updated", what, ch)
			}
			i++
		}
		return nil
	})
}

func benchmarkRepairClean(b *testing.B, vips int) {
	s := benchState(vips)
	inBenchNetns(b, func(ns.NetNS) error {
		bal := newTestBalancer(b, Config{})
		if _, err := bal.Sync(s); err != nil {
			return err
		}
		for b.Loop() {
			ch, err := bal.Repair(s)
			if err != nil {
				return err
			}
			if ch.Changed() {
				return fmt.Errorf("Repair of a clean table changed %+v", ch)
			}
		}
		return nil
	})
}
