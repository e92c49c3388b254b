package dns

// This file reads the upstream resolvers of a node from a resolv.conf.

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// UpstreamsFromResolvConf returns the nameservers of the resolv.conf at path as Config.Upstreams
// ("ip:53", in the file's order, each once), leaving out the addresses in exclude: the
// server's own listen addresses, which would make a forwarding loop. Loopback nameservers stay
// (systemd-resolved's 127.0.0.53 is valid where the forwards leave from: the process's network
// namespace). A file without nameservers gives none, and the server answers SERVFAIL for the
// names it forwards. A nameserver line that is not an IP address is an error naming its line.
func UpstreamsFromResolvConf(path string, exclude []netip.Addr) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dns: read upstream resolvers: %w", err)
	}
	defer f.Close()

	excluded := make(map[netip.Addr]bool, len(exclude))
	for _, ip := range exclude {
		excluded[ip.Unmap().WithZone("")] = true
	}
	var upstreams []string
	seen := make(map[string]bool)
	scanner := bufio.NewScanner(f)
	for line := 1; scanner.Scan(); line++ {
		fields := strings.Fields(scanner.Text())
		if len(fields) == 0 || fields[0] != "nameserver" {
			continue // comments (# or ;), blank lines, other options
		}
		if len(fields) < 2 {
			return nil, fmt.Errorf("dns: %s line %d: nameserver without an address", path, line)
		}
		ip, err := netip.ParseAddr(fields[1])
		if err != nil {
			return nil, fmt.Errorf("dns: %s line %d: nameserver %q is not an IP address: %w", path, line, fields[1], err)
		}
		ip = ip.Unmap()
		if excluded[ip.WithZone("")] {
			continue
		}
		upstream := netip.AddrPortFrom(ip, 53).String()
		if !seen[upstream] {
			seen[upstream] = true
			upstreams = append(upstreams, upstream)
		}
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("dns: read %s: %w", path, err)
	}
	return upstreams, nil
}
