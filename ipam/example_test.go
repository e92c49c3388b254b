package ipam_test

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/shoal/shoal/ipam"
)

func ExamplePool() {
	dynamic, _ := ipam.ParseRange("10.20.0.8-10.20.0.15")
	pool, err := ipam.New(ipam.Config{
		Subnet:   netip.MustParsePrefix("10.20.0.0/24"),
		Dynamic:  dynamic,
		Reserved: []ipam.Range{{First: netip.MustParseAddr("10.20.0.9"), Last: netip.MustParseAddr("10.20.0.9")}},
		Cooldown: time.Minute,
	})
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) // from the replicated record, never time.Now

	a, _ := pool.AllocateNext(now)
	b, _ := pool.AllocateNext(now) // 10.20.0.9 is reserved: skipped
	fmt.Println(a, b)

	// Pins may use reserved addresses and addresses outside the dynamic range.
	fmt.Println(pool.AllocateSpecific(netip.MustParseAddr("10.20.0.9"), now, ipam.RefuseCooling))
	fmt.Println(pool.AllocateSpecific(netip.MustParseAddr("10.20.0.1"), now, ipam.RefuseCooling))

	// A released address cools down: refused to a pin unless the caller vouches for its owner.
	_ = pool.Release(a, now)
	err = pool.AllocateSpecific(a, now.Add(time.Second), ipam.RefuseCooling)
	fmt.Println(errors.Is(err, ipam.ErrCoolingDown))
	fmt.Println(pool.AllocateSpecific(a, now.Add(time.Second), ipam.TakeCooling))

	// A new leader rebuilds the same pool from the replicated state.
	rebuilt, _ := ipam.New(pool.Config())
	_ = rebuilt.Restore(pool.State())
	x, _ := pool.AllocateNext(now)
	y, _ := rebuilt.AllocateNext(now)
	fmt.Println(x, y, pool.Used(), pool.Free())
	// Output:
	// 10.20.0.8 10.20.0.10
	// <nil>
	// ipam: address 10.20.0.1: not assignable: the gateway of 10.20.0.0/24
	// true
	// <nil>
	// 10.20.0.11 10.20.0.11 4 4
}
