package backend

import (
	"errors"
	"strings"
	"testing"

	"github.com/shoal/shoal/mesh"
)

func TestAutoPicksIPVSOnlyWhereAvailable(t *testing.T) {
	available, why := IPVSAvailable()
	t.Logf("IPVS available: %t %s", available, why)
	b, err := Open(Auto, Config{})
	if err != nil {
		t.Fatal(err)
	}
	want := NFTables
	if available {
		want = IPVS
	}
	if b.Backend() != want {
		t.Errorf("auto opened %s, want %s", b.Backend(), want)
	}
}

func TestOpenNFTables(t *testing.T) {
	b, err := Open(NFTables, Config{Selection: mesh.Hash, NFTTable: "x"})
	if err != nil || b.Backend() != NFTables {
		t.Fatalf("Open(nftables) = %v, %v", b, err)
	}
}

func TestOpenIPVSNamesWhatIsMissing(t *testing.T) {
	b, err := Open(IPVS, Config{})
	if ok, why := IPVSAvailable(); ok {
		if err != nil || b.Backend() != IPVS {
			t.Errorf("Open(ipvs) = %v, %v where IPVS is available", b, err)
		}
	} else {
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), why) || !strings.Contains(why, "IP_VS") {
			t.Errorf("Open(ipvs) = %v, want ErrUnavailable naming %q", err, why)
		}
		t.Log(err)
	}
}

func TestOpenRefusesUnknownKinds(t *testing.T) {
	for _, kind := range []string{"", "iptables", "IPVS"} {
		_, err := Open(kind, Config{})
		if !errors.Is(err, ErrUnknownBackend) || !strings.Contains(err.Error(), `"`+kind+`"`) {
			t.Errorf("Open(%q) = %v, want ErrUnknownBackend naming it", kind, err)
		}
	}
}

func TestOpenRefusesBadConfig(t *testing.T) {
	for _, kind := range []string{NFTables, Auto} {
		_, err := Open(kind, Config{Selection: 7})
		var fe *mesh.FieldError
		if !errors.As(err, &fe) || fe.Field != "Config.Selection" {
			t.Errorf("Open(%s) with a bad selection = %v, want a FieldError for Config.Selection", kind, err)
		}
	}
}
