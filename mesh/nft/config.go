package nft

// This file owns the Balancer's configuration (Config, its defaults and checks) and New.

import (
	"fmt"
	"math/bits"
	"sync"

	"github.com/google/nftables"
	"github.com/shoal/shoal/mesh"
)

// Defaults for the zero fields of Config.
const (
	DefaultTable = "shoal"
	// DefaultSNATMark is the packet mark bit an ingress port's chain sets so that the
	// postrouting chain SNATs the connection.
	DefaultSNATMark uint32 = 0x0010_0000
	// DefaultRejectMark is the packet mark bit a chain without backends sets so that the input
	// chain refuses the connection.
	DefaultRejectMark uint32 = 0x0020_0000
)

const maxTableName = 255 // NFT_TABLE_MAXNAMELEN less the NUL

// Config configures a Balancer.
type Config struct {
	// Table is the name of the table (family ip) the Balancer owns; "" means DefaultTable.
	// Tests and benchmarks use their own.
	Table string
	// Selection picks a backend for a new connection: mesh.Random (default) or mesh.Hash
	// (by the client's address).
	Selection mesh.Selection
	// SNATMark and RejectMark are single bits of the packet mark the table uses between its
	// chains; 0 means the default. Pick bits no other firewall on the node uses.
	SNATMark   uint32
	RejectMark uint32
}

// withDefaults checks cfg and fills in its zero fields.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Table == "" {
		cfg.Table = DefaultTable
	}
	if len(cfg.Table) > maxTableName {
		return Config{}, &mesh.FieldError{Field: "Config.Table", Reason: fmt.Sprintf("%d bytes, longer than %d", len(cfg.Table), maxTableName)}
	}
	if cfg.Selection != mesh.Random && cfg.Selection != mesh.Hash {
		return Config{}, &mesh.FieldError{Field: "Config.Selection", Reason: fmt.Sprintf("%s is not random or hash", cfg.Selection)}
	}
	if cfg.SNATMark == 0 {
		cfg.SNATMark = DefaultSNATMark
	}
	if cfg.RejectMark == 0 {
		cfg.RejectMark = DefaultRejectMark
	}
	for _, m := range []struct {
		field string
		bit   uint32
	}{{"Config.SNATMark", cfg.SNATMark}, {"Config.RejectMark", cfg.RejectMark}} {
		if bits.OnesCount32(m.bit) != 1 {
			return Config{}, &mesh.FieldError{Field: m.field, Reason: fmt.Sprintf("%#x is not a single bit", m.bit)}
		}
	}
	if cfg.SNATMark == cfg.RejectMark {
		return Config{}, &mesh.FieldError{Field: "Config.RejectMark", Reason: fmt.Sprintf("%#x is also Config.SNATMark", cfg.RejectMark)}
	}
	return cfg, nil
}

// Balancer programs service load balancing into one nftables table. See the package doc.
type Balancer struct {
	cfg   Config
	rules rules

	mu sync.Mutex
	// applied is what the last successful Sync, Update or Repair left in the kernel; nil when
	// unknown (before the first, after a failure or a Remove): the next Sync then rebuilds the
	// table, and Update fails with mesh.ErrNoState.
	applied *tableModel
	// index is the State applied was built for, which Update checks and changes; nil exactly
	// when applied is.
	index *mesh.Index
	// sockets are the netlink sockets the Balancer keeps open between calls (conn.go).
	sockets sockets
}

var _ mesh.Balancer = (*Balancer)(nil)

// New returns a Balancer for cfg. It does not touch the kernel.
func New(cfg Config) (*Balancer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Balancer{cfg: cfg, rules: rules{cfg: cfg}}, nil
}

// Backend returns "nftables".
func (b *Balancer) Backend() string { return "nftables" }

// Table is the name of the table the Balancer owns.
func (b *Balancer) Table() string { return b.cfg.Table }

func (b *Balancer) table() *nftables.Table {
	return &nftables.Table{Name: b.cfg.Table, Family: nftables.TableFamilyIPv4}
}
