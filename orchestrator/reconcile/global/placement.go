package global

// This file owns which nodes a global service fits: its placement
// constraints and platforms, matched with the scheduler's own placement
// language so both agree on every node.

import (
	"fmt"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/scheduler"
)

// placement is a service's parsed placement.
type placement struct {
	constraints []scheduler.Constraint
	// platforms holds one constraint list per platform; a node fits when
	// it matches any of them (or there are none).
	platforms [][]scheduler.Constraint
}

// parsePlacement parses p. The Control API refuses bad constraints, so an
// error here means a spec written some other way.
func parsePlacement(p *api.Placement) (placement, error) {
	cs, err := scheduler.ParseConstraints(p.GetConstraints())
	if err != nil {
		return placement{}, err
	}
	pl := placement{constraints: cs}
	for _, pf := range p.GetPlatforms() {
		var exprs []string
		if pf.GetOs() != "" {
			exprs = append(exprs, "node.platform.os=="+pf.GetOs())
		}
		if pf.GetArch() != "" {
			exprs = append(exprs, "node.platform.arch=="+pf.GetArch())
		}
		pcs, err := scheduler.ParseConstraints(exprs)
		if err != nil {
			return placement{}, fmt.Errorf("platform %s/%s: %w", pf.GetOs(), pf.GetArch(), err)
		}
		pl.platforms = append(pl.platforms, pcs)
	}
	return pl, nil
}

// fits reports whether n passes the constraints and one of the platforms.
func (pl placement) fits(n *api.Node) bool {
	if !scheduler.MatchAll(pl.constraints, n) {
		return false
	}
	if len(pl.platforms) == 0 {
		return true
	}
	for _, cs := range pl.platforms {
		if scheduler.MatchAll(cs, n) {
			return true
		}
	}
	return false
}
