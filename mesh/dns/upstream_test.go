package dns

// This file is the fake upstream resolver the forwarding tests send to. It listens on
// 127.0.0.1 of the test process's own network namespace, over UDP and TCP on one port: that is
// where the server's forwards leave from (its handlers run on ordinary goroutines, not on the
// thread locked to the test's namespace), as they leave from the node's namespace in shoald.

import (
	"net"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// Names the fake upstream knows.
const (
	upstreamName     = "example.test."  // one A record: upstreamAddr
	upstreamBigName  = "big.test."      // truncated over UDP; upstreamBigCount A records over TCP
	upstreamFailName = "servfail.test." // SERVFAIL
)

const upstreamBigCount = 50

var upstreamAddr = netip.MustParseAddr("198.18.99.1")

// fakeUpstream is a resolver the test starts and stops.
type fakeUpstream struct {
	addr    netip.AddrPort
	udp     *dns.Server
	tcp     *dns.Server
	failing bool         // answers SERVFAIL to everything
	queries atomic.Int64 // queries received, UDP and TCP
	stopped bool
}

// startUpstream starts a fake upstream on 127.0.0.1, stopped when the test ends; a failing one
// answers SERVFAIL to everything.
func startUpstream(t *testing.T, failing bool) *fakeUpstream {
	t.Helper()
	u := &fakeUpstream{failing: failing}
	var pc net.PacketConn
	var ln net.Listener
	for attempt := 0; ; attempt++ { // a free UDP port whose TCP twin is free too
		var err error
		pc, err = net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("fake upstream: %v", err)
		}
		ln, err = net.Listen("tcp4", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
		if attempt == 10 {
			t.Fatalf("fake upstream: no port free over both UDP and TCP: %v", err)
		}
	}
	u.addr = pc.LocalAddr().(*net.UDPAddr).AddrPort()
	u.udp = &dns.Server{PacketConn: pc, Handler: u.handler(true)}
	u.tcp = &dns.Server{Listener: ln, Handler: u.handler(false)}
	for _, srv := range []*dns.Server{u.udp, u.tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
	}
	t.Cleanup(u.stop)
	return u
}

// stop shuts the fake upstream down: queries to it are refused by the kernel from then on.
func (u *fakeUpstream) stop() {
	if u.stopped {
		return
	}
	u.stopped = true
	u.udp.Shutdown()
	u.tcp.Shutdown()
}

func (u *fakeUpstream) handler(overUDP bool) dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		u.queries.Add(1)
		resp := new(dns.Msg)
		resp.SetReply(req)
		resp.RecursionAvailable = true
		q := req.Question[0]
		switch {
		case u.failing:
			resp.Rcode = dns.RcodeServerFailure
		case q.Name == upstreamName && q.Qtype == dns.TypeA:
			resp.Answer = append(resp.Answer, upstreamA(q.Name, upstreamAddr))
		case q.Name == upstreamBigName && overUDP:
			resp.Truncated = true
		case q.Name == upstreamBigName:
			for i := range upstreamBigCount {
				ip := netip.AddrFrom4([4]byte{198, 18, 100, byte(i + 1)})
				resp.Answer = append(resp.Answer, upstreamA(q.Name, ip))
			}
		case q.Name == upstreamFailName:
			resp.Rcode = dns.RcodeServerFailure
		default:
			resp.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(resp)
	})
}

func upstreamA(name string, ip netip.Addr) dns.RR {
	return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: ip.AsSlice()}
}
