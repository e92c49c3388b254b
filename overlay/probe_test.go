package overlay

// This file probes the data path between tasks: ICMP echo (spoken over a raw socket, since the
// test host has no ping binary) and a TCP exchange large enough to need many full-size segments.

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/shoal/shoal/internal/netprobe"

	"github.com/containernetworking/plugins/pkg/ns"
)

// probeTimeout bounds each probe; the overlay answers ARP locally, so a working path answers
// at once and the bound only matters when the path is broken.
const probeTimeout = 5 * time.Second

// ping sends ICMP echo requests from the task to dst until one is answered or probeTimeout
// passes.
func (task *testTask) ping(dst netip.Addr) error {
	if err := netprobe.Ping(task.ns, dst, probeTimeout); err != nil {
		return fmt.Errorf("ping %s → %s: %w", task.ip, dst, err)
	}
	return nil
}

// tcpExchange sends 256 KiB from the task to a listener in dst's namespace, which echoes it
// back, and checks what comes back.
func (task *testTask) tcpExchange(dst *testTask) error {
	var ln net.Listener
	err := dst.ns.Do(func(ns.NetNS) error {
		var err error
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(dst.ip, 0).String())
		return err
	})
	if err != nil {
		return fmt.Errorf("listen in task %s: %w", dst.ip, err)
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() { served <- echoOnce(ln) }()

	var conn net.Conn
	err = task.ns.Do(func(ns.NetNS) error {
		var err error
		conn, err = net.DialTimeout("tcp4", ln.Addr().String(), probeTimeout)
		return err
	})
	if err != nil {
		return fmt.Errorf("dial %s from task %s: %w", ln.Addr(), task.ip, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(probeTimeout)); err != nil {
		return err
	}
	sent := make([]byte, 256<<10)
	if _, err := rand.Read(sent); err != nil {
		return err
	}
	writeErr := make(chan error, 1)
	go func() {
		_, err := conn.Write(sent)
		writeErr <- err
	}()
	got := make([]byte, len(sent))
	if _, err := io.ReadFull(conn, got); err != nil {
		return fmt.Errorf("read the echo %s → %s: %w", task.ip, dst.ip, err)
	}
	if err := <-writeErr; err != nil {
		return fmt.Errorf("write %s → %s: %w", task.ip, dst.ip, err)
	}
	if !bytes.Equal(sent, got) {
		return fmt.Errorf("the echo %s → %s differs from what was sent", task.ip, dst.ip)
	}
	conn.Close()
	return <-served
}

// echoOnce accepts one connection and copies it back to itself until the peer closes.
func echoOnce(ln net.Listener) error {
	c, err := ln.Accept()
	if err != nil {
		return fmt.Errorf("accept: %w", err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(probeTimeout)); err != nil {
		return err
	}
	if _, err := io.Copy(c, c); err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	return nil
}
