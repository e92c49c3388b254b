package cni

import "testing"

func TestMACOf(t *testing.T) {
	tests := []struct {
		prefix, want string
		wantErr      bool
	}{
		{prefix: "198.18.0.5/24", want: "02:42:c6:12:00:05"},
		{prefix: "198.18.255.254/15", want: "02:42:c6:12:ff:fe"},
		{prefix: "10.0.0.1/32", want: "02:42:0a:00:00:01"},
		{prefix: "::ffff:198.18.0.5/120", want: "02:42:c6:12:00:05"},
		{prefix: "fd00:5::a:b:c:d/64", want: "02:42:00:0c:00:0d"},
		{prefix: "198.18.0.5", wantErr: true},
		{prefix: "", wantErr: true},
		{prefix: "fe80::1%eth0/64", wantErr: true},
	}
	for _, tc := range tests {
		got, err := MACOf(tc.prefix)
		switch {
		case tc.wantErr && err == nil:
			t.Errorf("MACOf(%q) = %s, want an error", tc.prefix, got)
		case !tc.wantErr && err != nil:
			t.Errorf("MACOf(%q): %v", tc.prefix, err)
		case !tc.wantErr && got.String() != tc.want:
			t.Errorf("MACOf(%q) = %s, want %s", tc.prefix, got, tc.want)
		}
	}
}

// The MAC follows the address, not the node or the sandbox: the same address
// gives the same MAC every time.
func TestMACOfIsStable(t *testing.T) {
	a, err := MACOf("198.18.3.7/24")
	if err != nil {
		t.Fatal(err)
	}
	b, err := MACOf("198.18.3.7/16")
	if err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Errorf("MACOf differs with the prefix length: %s, %s", a, b)
	}
	if a[0]&0x02 == 0 || a[0]&0x01 != 0 {
		t.Errorf("MACOf = %s, want a locally administered unicast address", a)
	}
}
