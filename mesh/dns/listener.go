package dns

// This file owns the sockets: one listener per Zone.Listen address, a UDP socket and a TCP
// socket on the same port, each served by its own github.com/miekg/dns Server.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// shutdownWait bounds how long stopping a listener waits for the queries it is answering; the
// forwards among them are cancelled first, so they end at once.
const shutdownWait = 2 * time.Second

// listener serves one address over UDP and TCP.
type listener struct {
	addr    netip.AddrPort
	serving []*dns.Server      // the UDP and TCP servers that started
	cancel  context.CancelFunc // cancels the forwards of the queries received here
	log     *slog.Logger
	// broken is set when a server stopped reading its socket on its own (an error from
	// accept or read, logged); the next Sync replaces the listener.
	broken atomic.Bool
}

// bindListener opens the UDP and TCP sockets of addr in the network namespace of the calling
// thread. They bind with IP_FREEBIND: the address need not be on an interface yet (the
// network's bridge may be made after the agent's first Sync), the sockets receive from the
// moment it is.
func bindListener(addr netip.AddrPort) (net.PacketConn, net.Listener, error) {
	lc := net.ListenConfig{Control: freebind}
	ctx := context.Background()
	pc, err := lc.ListenPacket(ctx, "udp4", addr.String())
	if err != nil {
		return nil, nil, fmt.Errorf("open the UDP socket: %w", err)
	}
	ln, err := lc.Listen(ctx, "tcp4", addr.String())
	if err != nil {
		pc.Close()
		return nil, nil, fmt.Errorf("open the TCP socket: %w", err)
	}
	return pc, ln, nil
}

// freebind sets IP_FREEBIND on a socket before it binds.
func freebind(_, _ string, c syscall.RawConn) error {
	var sockErr error
	err := c.Control(func(fd uintptr) {
		sockErr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_FREEBIND, 1)
	})
	if err != nil {
		return err
	}
	if sockErr != nil {
		return fmt.Errorf("set IP_FREEBIND: %w", sockErr)
	}
	return nil
}

// startListener binds addr and serves it with handler(ctx, overUDP), returning once both
// sockets are being read. ctx, derived from parent, ends when the listener stops.
func startListener(parent context.Context, addr netip.AddrPort, handler func(ctx context.Context, overUDP bool) dns.Handler, log *slog.Logger) (*listener, error) {
	pc, ln, err := bindListener(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(parent)
	l := &listener{addr: addr, cancel: cancel, log: log.With("listen", addr.String())}
	var errs []error
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: handler(ctx, true)},
		{Listener: ln, Handler: handler(ctx, false)},
	} {
		if err := serve(srv, l.log, func() { l.broken.Store(true) }); err != nil {
			errs = append(errs, err)
			continue
		}
		l.serving = append(l.serving, srv)
	}
	if err := errors.Join(errs...); err != nil {
		l.stop()
		pc.Close() // a server that did not start leaves its socket open; closing twice is harmless
		ln.Close()
		return nil, err
	}
	return l, nil
}

// serve runs srv on its own goroutine and returns once it reads its socket, or with the error
// that kept it from starting; broke is called if it stops with an error after it started.
func serve(srv *dns.Server, log *slog.Logger, broke func()) error {
	proto := "tcp"
	if srv.PacketConn != nil {
		proto = "udp"
	}
	started := make(chan struct{})
	exited := make(chan error, 1)
	var isStarted atomic.Bool
	srv.NotifyStartedFunc = func() { isStarted.Store(true); close(started) }
	go func() {
		err := srv.ActivateAndServe()
		if err != nil && isStarted.Load() {
			log.Error("DNS listener stopped; the next Sync opens it again", "proto", proto, "err", err)
			broke()
		}
		exited <- err
	}()
	select {
	case <-started:
		return nil
	case err := <-exited:
		return fmt.Errorf("serve over %s: %w", proto, err)
	}
}

// stop cancels the forwards in flight, closes both sockets and waits (up to shutdownWait) for
// the queries being answered.
func (l *listener) stop() {
	l.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), shutdownWait)
	defer cancel()
	for _, srv := range l.serving {
		if err := srv.ShutdownContext(ctx); err != nil {
			l.log.Warn("DNS listener did not stop cleanly", "err", err)
		}
	}
}
