package ipvs

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/shoal/shoal/mesh"
)

func TestAllocateFromNothing(t *testing.T) {
	got, err := allocate(testState(3, 2), marks{})
	if err != nil {
		t.Fatal(err)
	}
	want := marks{
		vips: map[netip.Addr]uint32{ip4(1): kindVIP | 1, ip4(2): kindVIP | 2, ip4(3): kindVIP | 3},
		ports: map[portKey]uint32{
			{mesh.TCP, 8080}: kindIngress | 1, {mesh.UDP, 53}: kindHost | 1, {mesh.TCP, 9000}: RejectMark,
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("allocate = %+v, want %+v", got, want)
	}
}

func TestAllocateKeepsMarks(t *testing.T) {
	s := testState(3, 2)
	prev := marks{
		vips: map[netip.Addr]uint32{
			ip4(1): kindVIP | 7,     // kept
			ip4(2): kindIngress | 1, // wrong kind: a new one
			ip4(3): kindVIP | 7,     // taken by 198.18.0.1: a new one
			ip4(9): kindVIP | 1,     // gone: its mark is not given to another VIP yet
		},
		ports: map[portKey]uint32{{mesh.TCP, 8080}: kindIngress | 4, {mesh.UDP, 53}: kindIngress | 5},
	}
	got, err := allocate(s, prev)
	if err != nil {
		t.Fatal(err)
	}
	want := marks{
		vips: map[netip.Addr]uint32{ip4(1): kindVIP | 7, ip4(2): kindVIP | 2, ip4(3): kindVIP | 3},
		ports: map[portKey]uint32{
			{mesh.TCP, 8080}: kindIngress | 4, {mesh.UDP, 53}: kindHost | 1, {mesh.TCP, 9000}: RejectMark,
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("allocate = %+v, want %+v", got, want)
	}

	// A VIP that loses its backends gets the reject mark; when they come back, a mark of its
	// kind again.
	s.VIPs[0].Backends = nil
	if got, _ := allocate(s, got); got.vips[ip4(1)] != RejectMark {
		t.Errorf("a VIP without backends has mark %#x, want the reject mark", got.vips[ip4(1)])
	}
}

func TestOurs(t *testing.T) {
	for m, want := range map[uint32]bool{
		kindVIP | 1: true, kindHost | idMask: true, kindIngress | 3: true,
		kindVIP: false, RejectMark: false, 0x100: false, kindVIP | kindHost | 1: false, 0x1000_0000 | kindVIP | 1: false,
	} {
		if ours(m) != want {
			t.Errorf("ours(%#x) = %t, want %t", m, !want, want)
		}
	}
}
