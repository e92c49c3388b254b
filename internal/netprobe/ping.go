// Package netprobe probes the data path from inside a network namespace for tests, benchmarks
// and demos: ICMP echo spoken over a raw socket (no ping binary needed). It imports only the CNI
// plugins' ns helpers and golang.org/x/net.
package netprobe

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// echoID tells this process's echo requests apart; each Ping takes the next.
var echoID atomic.Uint32

// Ping sends ICMP echo requests from inside netns to dst, one a second, until one is answered or
// timeout passes.
func Ping(netns ns.NetNS, dst netip.Addr, timeout time.Duration) error {
	var conn *icmp.PacketConn
	err := netns.Do(func(ns.NetNS) error {
		var err error
		conn, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	})
	if err != nil {
		return fmt.Errorf("open an ICMP socket in %s: %w", netns.Path(), err)
	}
	defer conn.Close()
	id := int((uint32(os.Getpid()) + echoID.Add(1)) & 0xffff)
	deadline := time.Now().Add(timeout)
	for seq := 1; time.Now().Before(deadline); seq++ {
		msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("shoal probe")}}
		b, err := msg.Marshal(nil)
		if err != nil {
			return err
		}
		if _, err := conn.WriteTo(b, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
			return fmt.Errorf("send an echo request to %s: %w", dst, err)
		}
		wait := time.Now().Add(time.Second)
		if wait.After(deadline) {
			wait = deadline
		}
		ok, err := awaitEchoReply(conn, dst, id, seq, wait)
		if err != nil || ok {
			return err
		}
	}
	return fmt.Errorf("no echo reply from %s within %s", dst, timeout)
}

// awaitEchoReply reads until the reply to (id, seq) from dst arrives or the deadline passes.
func awaitEchoReply(conn *icmp.PacketConn, dst netip.Addr, id, seq int, deadline time.Time) (bool, error) {
	if err := conn.SetReadDeadline(deadline); err != nil {
		return false, err
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("read an echo reply: %w", err)
		}
		msg, err := icmp.ParseMessage(1, buf[:n]) // 1: ICMP for IPv4
		if err != nil || msg.Type != ipv4.ICMPTypeEchoReply {
			continue
		}
		if echo, ok := msg.Body.(*icmp.Echo); ok && echo.ID == id && echo.Seq == seq && from.String() == dst.String() {
			return true, nil
		}
	}
}
