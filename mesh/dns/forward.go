package dns

// This file forwards the queries for names that are not the zones' to the upstream resolvers
// and brings back their answer unchanged.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/miekg/dns"
)

const (
	// upstreamTimeout bounds one exchange with one upstream (UDP, then TCP when truncated).
	upstreamTimeout = 2 * time.Second
	// forwardBudget bounds a whole forwarded query, every upstream tried; it stays under the
	// 5 s a glibc client waits before it asks again.
	forwardBudget = 4 * time.Second
	// maxForwarding bounds the queries being forwarded at once, so that a container sending a
	// flood of queries for unreachable names cannot pile up goroutines and sockets; the query
	// over the bound gets SERVFAIL at once.
	maxForwarding = 1024
)

var (
	errNoUpstreams  = errors.New("no upstream resolvers configured")
	errForwardLimit = fmt.Errorf("more than %d queries being forwarded", maxForwarding)
)

// forwarder sends queries to the upstreams in order until one answers.
type forwarder struct {
	upstreams []string
	inFlight  chan struct{} // one token per query being forwarded
}

func newForwarder(upstreams []string) *forwarder {
	return &forwarder{upstreams: upstreams, inFlight: make(chan struct{}, maxForwarding)}
}

// forward returns the first answer an upstream gives to req that is neither SERVFAIL nor
// REFUSED (those mean "ask another", as in Docker's resolver), or an error when none does.
func (f *forwarder) forward(ctx context.Context, req *dns.Msg) (*dns.Msg, error) {
	if len(f.upstreams) == 0 {
		return nil, errNoUpstreams
	}
	select {
	case f.inFlight <- struct{}{}:
		defer func() { <-f.inFlight }()
	default:
		return nil, errForwardLimit
	}
	ctx, cancel := context.WithTimeout(ctx, forwardBudget)
	defer cancel()

	var errs []error
	for _, upstream := range f.upstreams {
		resp, err := exchange(ctx, req, upstream)
		if err == nil && (resp.Rcode == dns.RcodeServerFailure || resp.Rcode == dns.RcodeRefused) {
			err = fmt.Errorf("answered %s", dns.RcodeToString[resp.Rcode])
		}
		if err == nil {
			return resp, nil
		}
		errs = append(errs, fmt.Errorf("upstream %s: %w", upstream, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// exchange asks one upstream over UDP, then over TCP when the UDP answer is truncated.
func exchange(ctx context.Context, req *dns.Msg, upstream string) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, upstreamTimeout)
	defer cancel()
	resp, err := exchangeOver(ctx, "udp", req, upstream)
	if err != nil {
		return nil, fmt.Errorf("over UDP: %w", err)
	}
	if !resp.Truncated {
		return resp, nil
	}
	resp, err = exchangeOver(ctx, "tcp", req, upstream)
	if err != nil {
		return nil, fmt.Errorf("over TCP after a truncated UDP answer: %w", err)
	}
	return resp, nil
}

// exchangeOver sends req to upstream over network ("udp", "tcp") and reads the answer, giving
// up when ctx ends: its deadline bounds the exchange, its cancellation (the listener closes)
// cuts it short.
func exchangeOver(ctx context.Context, network string, req *dns.Msg, upstream string) (*dns.Msg, error) {
	client := &dns.Client{Net: network}
	conn, err := client.DialContext(ctx, upstream)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The query goes as the client sent it, ID, EDNS0 and flags included, so that its answer
	// can be relayed as it is; each exchange sends its own copy.
	resp, _, err := client.ExchangeWithConnContext(ctx, req.Copy(), conn)
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return resp, err
}
