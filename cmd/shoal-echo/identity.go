package main

// This file owns the identity a shoal-echo instance reports: who it is in
// the cluster (from the env the Docker executor sets) and where it runs
// (hostname, first IPv4 address).

import (
	"net"
	"os"
)

// Identity is what shoal-echo answers with: on GET / and as the first line
// of every TCP echo connection.
type Identity struct {
	Hostname string `json:"hostname"`
	Slot     string `json:"slot"`
	IP       string `json:"ip"`
	Task     string `json:"task"`
	Service  string `json:"service"`
	// Peer is the address the request or connection came from, as this
	// instance sees it (a client's own address, or a load balancer's).
	Peer string `json:"peer,omitempty"`
}

// identitySource reads the parts of an Identity; tests replace its
// functions.
type identitySource struct {
	getenv   func(string) string
	hostname func() (string, error)
	ipv4     func() string
}

// hostIdentity reads the process's env, hostname and interfaces.
var hostIdentity = identitySource{getenv: os.Getenv, hostname: os.Hostname, ipv4: firstIPv4}

// read builds the identity now: the address may change while the process
// runs (a network attached after start), so nothing is cached.
func (s identitySource) read() Identity {
	host, err := s.hostname()
	if err != nil {
		host = ""
	}
	return Identity{
		Hostname: host,
		Slot:     s.getenv("SHOAL_SLOT"),
		IP:       s.ipv4(),
		Task:     s.getenv("SHOAL_TASK_ID"),
		Service:  s.getenv("SHOAL_SERVICE_NAME"),
	}
}

// firstIPv4 is the first IPv4 address of an interface other than loopback,
// in interface order, or "" when there is none.
func firstIPv4() string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, iface := range ifaces {
		if iface.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		if ip := firstIPv4Of(addrs); ip != "" {
			return ip
		}
	}
	return ""
}

// firstIPv4Of is the first non-loopback IPv4 address among addrs.
func firstIPv4Of(addrs []net.Addr) string {
	for _, a := range addrs {
		var ip net.IP
		switch a := a.(type) {
		case *net.IPNet:
			ip = a.IP
		case *net.IPAddr:
			ip = a.IP
		}
		if ip4 := ip.To4(); ip4 != nil && !ip4.IsLoopback() {
			return ip4.String()
		}
	}
	return ""
}
