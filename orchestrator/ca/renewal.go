package ca

// This file decides when a node renews its certificate: at a random point
// between 50% and 80% of its lifetime, so that nodes which joined together
// do not all renew together, and again with backoff after a failure. How to
// renew is client.go's job.

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc"
)

const (
	// renewAttemptTimeout bounds one renewal: dial and RPC.
	renewAttemptTimeout = 30 * time.Second
	// renewBackoffMin and renewBackoffMax bound the wait after a failure.
	renewBackoffMin = time.Second
	renewBackoffMax = time.Minute
)

// RenewalLoop renews sc's certificate until ctx is done. dial must return a
// connection to a manager authenticated with sc.ClientCredentials; the loop
// closes it after each renewal. Any Update of sc, such as a direct Renew
// after a role change, reschedules the next renewal from the new
// certificate.
func RenewalLoop(ctx context.Context, sc *SecurityConfig, dial func(ctx context.Context) (*grpc.ClientConn, error), logger *slog.Logger) {
	var backoff time.Duration
	for {
		changed := sc.Changed()
		wait := backoff
		if wait == 0 {
			wait = time.Until(renewalTime(sc))
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-changed:
			timer.Stop()
			backoff = 0
			continue
		case <-timer.C:
		}
		if err := RenewVia(ctx, sc, dial); err != nil {
			if ctx.Err() != nil {
				return
			}
			backoff = nextBackoff(backoff)
			logger.Warn("node certificate renewal failed", "err", err, "retry_in", backoff, "not_after", sc.NotAfter())
			continue
		}
		backoff = 0
		id := sc.Identity()
		logger.Info("renewed node certificate", "node", id.NodeID, "role", id.Role.Name(), "not_after", sc.NotAfter())
	}
}

// RenewVia renews sc now through a connection dial opens, within one
// attempt's timeout.
func RenewVia(ctx context.Context, sc *SecurityConfig, dial func(ctx context.Context) (*grpc.ClientConn, error)) error {
	ctx, cancel := context.WithTimeout(ctx, renewAttemptTimeout)
	defer cancel()
	conn, err := dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return Renew(ctx, conn, sc)
}

// renewalTime picks a random point between 50% and 80% of the current
// certificate's lifetime, counted from its issuance (NotBefore is backdated).
func renewalTime(sc *SecurityConfig) time.Time {
	notBefore, notAfter := sc.validity()
	issued := notBefore.Add(certBackdate)
	if !issued.Before(notAfter) {
		issued = notBefore
	}
	lifetime := notAfter.Sub(issued)
	fraction := 0.5 + 0.3*rand.Float64()
	return issued.Add(time.Duration(float64(lifetime) * fraction))
}

// nextBackoff doubles the previous wait within [renewBackoffMin,
// renewBackoffMax] and jitters it by ±25%.
func nextBackoff(prev time.Duration) time.Duration {
	next := min(max(2*prev, renewBackoffMin), renewBackoffMax)
	return time.Duration(float64(next) * (0.75 + 0.5*rand.Float64()))
}
