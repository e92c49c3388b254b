package cnitest

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// ping sends ICMP echo requests from inside sb to dst until one is answered,
// giving up after a few; this host has no ping binary, so it speaks ICMP
// itself over a raw socket opened in the namespace.
func ping(t *testing.T, sb *sandbox, dst netip.Addr) error {
	t.Helper()
	var pingErr error
	sb.do(t, func() error {
		pingErr = echo(dst)
		return nil
	})
	return pingErr
}

func echo(dst netip.Addr) error {
	conn, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return fmt.Errorf("open ICMP socket: %w", err)
	}
	defer conn.Close()
	id := os.Getpid() & 0xffff
	const attempts = 5
	for seq := 1; seq <= attempts; seq++ {
		req := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("shoal-bridge test")}}
		b, err := req.Marshal(nil)
		if err != nil {
			return err
		}
		if _, err := conn.WriteTo(b, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
			return fmt.Errorf("send echo request to %s: %w", dst, err)
		}
		answered, err := awaitReply(conn, dst, id, seq, time.Now().Add(time.Second))
		if err != nil || answered {
			return err
		}
	}
	return fmt.Errorf("no echo reply from %s to %d requests", dst, attempts)
}

// awaitReply reads until the reply to (id, seq) from dst arrives or the
// deadline passes; other ICMP traffic on the raw socket is skipped.
func awaitReply(conn *icmp.PacketConn, dst netip.Addr, id, seq int, deadline time.Time) (bool, error) {
	if err := conn.SetReadDeadline(deadline); err != nil {
		return false, err
	}
	buf := make([]byte, 1500)
	for {
		n, peer, err := conn.ReadFrom(buf)
		var netErr net.Error
		if errors.As(err, &netErr) && netErr.Timeout() {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("read echo reply: %w", err)
		}
		msg, err := icmp.ParseMessage(1, buf[:n]) // 1: ICMP for IPv4
		if err != nil {
			continue
		}
		reply, ok := msg.Body.(*icmp.Echo)
		if msg.Type != ipv4.ICMPTypeEchoReply || !ok || reply.ID != id || reply.Seq != seq {
			continue
		}
		if from, ok := peer.(*net.IPAddr); ok && from.IP.Equal(dst.AsSlice()) {
			return true, nil
		}
	}
}
