package backend

// This file owns the choice: the backend names, Config, Open and IPVSAvailable.

import (
	"errors"
	"fmt"

	"github.com/shoal/shoal/mesh"
	"github.com/shoal/shoal/mesh/ipvs"
	"github.com/shoal/shoal/mesh/nft"
)

// The backend names Open accepts.
const (
	Auto     = "auto"
	NFTables = "nftables"
	IPVS     = "ipvs"
)

// Errors Open returns, for errors.Is.
var (
	ErrUnknownBackend = errors.New("unknown load-balancing backend")
	ErrUnavailable    = errors.New("load-balancing backend unavailable")
)

// Config configures whichever backend Open returns.
type Config struct {
	// Selection picks a backend for a new connection: mesh.Random or mesh.Hash (client
	// affinity).
	Selection mesh.Selection
	// NFTTable and IPVSTable name the nftables tables of the two backends; "" means their
	// defaults (nft.DefaultTable, ipvs.DefaultTable).
	NFTTable  string
	IPVSTable string
}

// IPVSAvailable reports whether the kernel has IPVS in the calling thread's network namespace,
// and if not, why.
func IPVSAvailable() (bool, string) { return ipvs.Available() }

// Open returns the Balancer named by kind: "nftables", "ipvs" (an error naming the missing
// kernel support where IPVS is not available) or "auto" (IPVS where available, else nftables).
// It does not change the kernel.
func Open(kind string, cfg Config) (mesh.Balancer, error) {
	switch kind {
	case Auto:
		if ok, _ := IPVSAvailable(); ok {
			return openIPVS(cfg)
		}
		return openNFTables(cfg)
	case NFTables:
		return openNFTables(cfg)
	case IPVS:
		if ok, why := IPVSAvailable(); !ok {
			return nil, fmt.Errorf("%w: %s: %s", ErrUnavailable, IPVS, why)
		}
		return openIPVS(cfg)
	}
	return nil, fmt.Errorf("%w %q: want %s, %s or %s", ErrUnknownBackend, kind, Auto, NFTables, IPVS)
}

func openNFTables(cfg Config) (mesh.Balancer, error) {
	b, err := nft.New(nft.Config{Table: cfg.NFTTable, Selection: cfg.Selection})
	if err != nil {
		return nil, fmt.Errorf("%s backend: %w", NFTables, err)
	}
	return b, nil
}

func openIPVS(cfg Config) (mesh.Balancer, error) {
	b, err := ipvs.New(ipvs.Config{Table: cfg.IPVSTable, Selection: cfg.Selection})
	if err != nil {
		return nil, fmt.Errorf("%s backend: %w", IPVS, err)
	}
	return b, nil
}
