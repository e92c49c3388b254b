package api

// NotLeaderReason is the reason of the google.rpc.ErrorInfo detail a
// follower attaches to an Unavailable answer for a leader-only call; the
// detail's metadata holds the leader's address under LeaderAddrKey.
const (
	NotLeaderReason = "NOT_LEADER"
	LeaderAddrKey   = "leader_addr"
	ErrorDomain     = "shoal"
)
