package units_test

import (
	"fmt"
	"testing"

	"github.com/shoal/shoal/internal/units"
)

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"0", 0}, {"1", 1}, {"1000000", 1000000}, {"100b", 100}, {"512B", 512},
		{"1k", 1 << 10}, {"1KB", 1 << 10}, {"1kib", 1 << 10}, {"8 KiB", 8 << 10},
		{"512m", 512 << 20}, {"512 MiB", 512 << 20}, {"256MB", 256 << 20},
		{"1g", 1 << 30}, {"4GB", 4 << 30}, {"4gb", 4 << 30}, {"4GiB", 4 << 30},
		{"1.5GiB", 3 << 29}, {"1.5g", 3 << 29}, {"2t", 2 << 40}, {"1TB", 1 << 40}, {"1TiB", 1 << 40},
		{"1p", 1 << 50}, {"0.5k", 512}, {"1.0001k", 1024}, {"7.9999p", 9007086664750307},
	}
	for _, tt := range tests {
		got, err := units.ParseBytes(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "m", "GiB", "-1", "-1GiB", "1e3", "1 g b", "1ib", "1.g", ".5g", "1.2.3G",
		"1  g", "99999999p", "99999999999TiB", "1gig", "4 parsecs"} {
		if got, err := units.ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q) = %d, want an error", bad, got)
		}
	}
}

func ExampleParseBytes() {
	for _, s := range []string{"4GB", "4GiB", "4g", "512m", "1.5k"} {
		n, _ := units.ParseBytes(s)
		fmt.Println(s, n)
	}
	// Output:
	// 4GB 4294967296
	// 4GiB 4294967296
	// 4g 4294967296
	// 512m 536870912
	// 1.5k 1536
}
