package ipvs

// This file owns the Balancer's configuration (Config, its defaults and checks), New, and the
// check that the kernel has IPVS at all.

import (
	"fmt"
	"os"
	"sync"

	"github.com/shoal/shoal/mesh"
)

// DefaultTable is the nftables table (family ip) that marks packets for IPVS.
const DefaultTable = "shoal-ipvs"

// ProcNetIPVS exists in every network namespace when the kernel has IPVS (loaded or built in).
const ProcNetIPVS = "/proc/net/ip_vs"

// Config configures a Balancer.
type Config struct {
	// Table is the nftables table of marks; "" means DefaultTable. Tests use their own.
	Table string
	// Selection picks a backend: mesh.Random (IPVS scheduler "rr") or mesh.Hash ("sh",
	// source hashing: a client keeps its backend).
	Selection mesh.Selection
}

const maxTableName = 255 // NFT_TABLE_MAXNAMELEN less the NUL

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
	return cfg, nil
}

// scheduler is the IPVS scheduler of the configured selection.
func (cfg Config) scheduler() string {
	if cfg.Selection == mesh.Hash {
		return "sh"
	}
	return "rr"
}

// Available reports whether the calling thread's network namespace has IPVS, and why not.
func Available() (bool, string) {
	if _, err := os.Stat(ProcNetIPVS); err != nil {
		return false, "kernel has no IP_VS (CONFIG_IP_VS unset): " + ProcNetIPVS + " missing"
	}
	return true, ""
}

// Balancer programs service load balancing into IPVS fwmark services and an nftables table
// that marks packets for them. See the package doc.
type Balancer struct {
	cfg Config

	mu sync.Mutex
	// applied is what the last successful Sync, Update or Repair left in the kernel; nil when
	// unknown: the next Sync then reads the kernel first, as Repair does, and Update fails with
	// mesh.ErrNoState.
	applied *model
	// index is the State applied was built for and cursor where Update looks for fresh marks;
	// both nil exactly when applied is.
	index  *mesh.Index
	cursor markCursor
}

var _ mesh.Balancer = (*Balancer)(nil)

// New returns a Balancer for cfg. It does not touch the kernel.
func New(cfg Config) (*Balancer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Balancer{cfg: cfg}, nil
}

// Backend returns "ipvs".
func (b *Balancer) Backend() string { return "ipvs" }
