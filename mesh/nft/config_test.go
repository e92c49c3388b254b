package nft

import (
	"errors"
	"strings"
	"testing"

	"github.com/shoal/shoal/mesh"
)

func TestNewFillsDefaults(t *testing.T) {
	b, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Table: DefaultTable, Selection: mesh.Random, SNATMark: DefaultSNATMark, RejectMark: DefaultRejectMark}
	if b.cfg != want || b.Backend() != "nftables" || b.Table() != DefaultTable {
		t.Errorf("New(Config{}): config %+v, backend %q, want %+v", b.cfg, b.Backend(), want)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	cases := []struct {
		cfg    Config
		field  string
		reason string
	}{
		{Config{Table: strings.Repeat("t", 256)}, "Config.Table", "longer than 255"},
		{Config{Selection: 9}, "Config.Selection", "selection(9) is not random or hash"},
		{Config{SNATMark: 0x3}, "Config.SNATMark", "0x3 is not a single bit"},
		{Config{RejectMark: 0xff00}, "Config.RejectMark", "not a single bit"},
		{Config{SNATMark: 0x10, RejectMark: 0x10}, "Config.RejectMark", "is also Config.SNATMark"},
	}
	for _, c := range cases {
		_, err := New(c.cfg)
		var fe *mesh.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(fe.Reason, c.reason) {
			t.Errorf("New(%+v) = %v, want field %s: %s", c.cfg, err, c.field, c.reason)
		}
	}
}
