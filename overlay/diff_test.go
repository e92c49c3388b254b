package overlay

// This file tests the comparison of wanted and programmed entries on its own, without a kernel.

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// fdbRec builds an FDB record from "MAC>VTEP", "MAC>VTEP~" (not permanent) or "MAC>VTEP#vni".
func fdbRec(t *testing.T, s string) fdbRecord {
	t.Helper()
	var r fdbRecord
	macText, rest, _ := strings.Cut(s, ">")
	mac, err := net.ParseMAC(macText)
	if err != nil {
		t.Fatal(err)
	}
	copy(r.mac[:], mac)
	r.permanent = !strings.HasSuffix(rest, "~")
	rest = strings.TrimSuffix(rest, "~")
	if dst, vni, ok := strings.Cut(rest, "#"); ok {
		rest = dst
		fmt.Sscan(vni, &r.vni)
	}
	r.dst = netip.MustParseAddr(rest)
	return r
}

func fdbRecs(t *testing.T, ss ...string) []fdbRecord {
	var rs []fdbRecord
	for _, s := range ss {
		rs = append(rs, fdbRec(t, s))
	}
	return rs
}

// fdbDiffText renders a diff as "status MAC want→have (detail)".
func fdbDiffText(d fdbDiff) string {
	e := fdbEntry(d)
	s := fmt.Sprintf("%s %s %s→%s", e.Status, e.MAC, addrText(e.Desired), addrText(e.Programmed))
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

const (
	zeroMAC = "00:00:00:00:00:00"
	macA    = "02:42:c6:13:07:0a"
	macB    = "02:42:c6:13:07:0b"
)

func TestDiffFDB(t *testing.T) {
	cases := []struct {
		name       string
		want, have []string
		diff       []string
	}{
		{"empty", nil, nil, nil},
		{"all missing",
			[]string{macA + ">198.18.0.2", zeroMAC + ">198.18.0.2"}, nil,
			[]string{"missing " + zeroMAC + " 198.18.0.2→none", "missing " + macA + " 198.18.0.2→none"}},
		{"all extra",
			nil, []string{macA + ">198.18.0.2", zeroMAC + ">198.18.0.2"},
			[]string{"extra " + zeroMAC + " none→198.18.0.2", "extra " + macA + " none→198.18.0.2"}},
		{"all ok",
			[]string{macA + ">198.18.0.2", zeroMAC + ">198.18.0.2", zeroMAC + ">198.18.0.3"},
			[]string{zeroMAC + ">198.18.0.3", macA + ">198.18.0.2", zeroMAC + ">198.18.0.2"},
			[]string{"ok " + zeroMAC + " 198.18.0.2→198.18.0.2", "ok " + zeroMAC + " 198.18.0.3→198.18.0.3", "ok " + macA + " 198.18.0.2→198.18.0.2"}},
		{"moved endpoint is replaced, not removed and added",
			[]string{macA + ">198.18.0.3"}, []string{macA + ">198.18.0.2"},
			[]string{"wrong " + macA + " 198.18.0.3→198.18.0.2 (at VTEP 198.18.0.2, want 198.18.0.3)"}},
		{"peer replaced is one extra and one missing",
			[]string{zeroMAC + ">198.18.0.3"}, []string{zeroMAC + ">198.18.0.2"},
			[]string{"extra " + zeroMAC + " none→198.18.0.2", "missing " + zeroMAC + " 198.18.0.3→none"}},
		{"second destination of a unicast MAC is extra",
			[]string{macA + ">198.18.0.3"}, []string{macA + ">198.18.0.2", macA + ">198.18.0.3"},
			[]string{"extra " + macA + " none→198.18.0.2", "ok " + macA + " 198.18.0.3→198.18.0.3"}},
		{"not permanent",
			[]string{macA + ">198.18.0.2", zeroMAC + ">198.18.0.2"}, []string{macA + ">198.18.0.2~", zeroMAC + ">198.18.0.2~"},
			[]string{"wrong " + zeroMAC + " 198.18.0.2→198.18.0.2 (not permanent)", "wrong " + macA + " 198.18.0.2→198.18.0.2 (not permanent)"}},
		{"another VNI",
			[]string{macB + ">198.18.0.2"}, []string{macB + ">198.18.0.2#7"},
			[]string{"wrong " + macB + " 198.18.0.2→198.18.0.2 (VNI 7, want the device's)"}},
		{"flood destination of another VNI is extra",
			[]string{zeroMAC + ">198.18.0.2"}, []string{zeroMAC + ">198.18.0.2#7"},
			[]string{"missing " + zeroMAC + " 198.18.0.2→none", "extra " + zeroMAC + " none→198.18.0.2"}},
		{"destination-less kernel entry",
			nil, []string{macA + ">0.0.0.0"},
			[]string{"extra " + macA + " none→0.0.0.0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, d := range diffFDB(fdbRecs(t, tc.want...), fdbRecs(t, tc.have...)) {
				got = append(got, fdbDiffText(d))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.diff) {
				t.Errorf("diff:\n got  %q\n want %q", got, tc.diff)
			}
		})
	}
}

func TestDiffNeigh(t *testing.T) {
	ip := func(n int) netip.Addr { return taskIP(n) }
	rec := func(n int, mac string, permanent bool) neighRecord {
		m, _ := net.ParseMAC(mac)
		return neighRecord{ip: ip(n), mac: m, permanent: permanent}
	}
	cases := []struct {
		name       string
		want, have []neighRecord
		diff       []string
	}{
		{"ok", []neighRecord{rec(10, macA, true)}, []neighRecord{rec(10, macA, true)}, []string{"ok 198.19.7.10"}},
		{"missing", []neighRecord{rec(10, macA, true)}, nil, []string{"missing 198.19.7.10"}},
		{"extra", nil, []neighRecord{rec(10, macA, true)}, []string{"extra 198.19.7.10"}},
		{"other MAC", []neighRecord{rec(10, macA, true)}, []neighRecord{rec(10, macB, true)},
			[]string{"wrong 198.19.7.10 (MAC " + macB + ", want " + macA + ")"}},
		{"no MAC", []neighRecord{rec(10, macA, true)}, []neighRecord{{ip: ip(10)}},
			[]string{"wrong 198.19.7.10 (MAC none, want " + macA + ")"}},
		{"not permanent", []neighRecord{rec(10, macA, true)}, []neighRecord{rec(10, macA, false)},
			[]string{"wrong 198.19.7.10 (not permanent)"}},
		{"sorted by IP",
			[]neighRecord{rec(12, macB, true), rec(10, macA, true)}, []neighRecord{rec(11, macA, true), rec(12, macB, true)},
			[]string{"missing 198.19.7.10", "extra 198.19.7.11", "ok 198.19.7.12"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, d := range diffNeigh(tc.want, tc.have) {
				s := fmt.Sprintf("%s %s", d.status, d.ip())
				if d.detail != "" {
					s += " (" + d.detail + ")"
				}
				got = append(got, s)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.diff) {
				t.Errorf("diff:\n got  %q\n want %q", got, tc.diff)
			}
		})
	}
}

func TestDeviceName(t *testing.T) {
	cases := []struct{ id, name string }{
		{"abc", "shxabc"},
		{"0123456789", "shx0123456789"},
		{"0123456789abcdef", "shx0123456789"},
	}
	for _, tc := range cases {
		if got := DeviceName(tc.id); got != tc.name {
			t.Errorf("DeviceName(%q) = %q, want %q", tc.id, got, tc.name)
		}
	}
}
