package docker

// This file owns the wait between a task's container starting and the task being reported
// RUNNING: a task that declares ports (its service's endpoint spec) is RUNNING once something
// listens on each TCP target port in its network namespace. RUNNING is what puts a task behind
// its service's VIP and published ports on every node, so a task whose process has not bound its
// port yet would get connections refused. A task that never listens is reported RUNNING after
// portsReadyTimeout, with a warning: the wait is a courtesy to its clients, not a health check.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shoal/shoal/api"
)

// portsReadyTimeout bounds the wait for a task's target ports to listen.
const portsReadyTimeout = 10 * time.Second

// portsReadyPoll is how often the task's sockets are read while waiting.
const portsReadyPoll = 5 * time.Millisecond

// tcpTargetPorts are the TCP ports task t's service declares it serves on, sorted, once each.
func tcpTargetPorts(t *api.Task) []uint16 {
	var out []uint16
	for _, p := range t.GetEndpoint().GetPorts() {
		if p.GetProtocol() != api.PortConfig_PROTOCOL_TCP || p.GetTargetPort() == 0 || p.GetTargetPort() > 65535 {
			continue
		}
		if port := uint16(p.GetTargetPort()); !slices.Contains(out, port) {
			out = append(out, port)
		}
	}
	slices.Sort(out)
	return out
}

// listeningTCPPorts returns the TCP ports with a listening socket (IPv4 or IPv6) in the network
// namespace of process pid.
func listeningTCPPorts(pid int) (map[uint16]bool, error) {
	out := map[uint16]bool{}
	for _, file := range []string{"tcp", "tcp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, file))
		if err != nil {
			if file == "tcp6" && os.IsNotExist(err) {
				continue // a kernel without IPv6
			}
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // the header
		for sc.Scan() {
			// "  sl  local_address rem_address   st ...": local "0100007F:1F90", st "0A" is LISTEN.
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 || fields[3] != "0A" {
				continue
			}
			_, hexPort, ok := strings.Cut(fields[1], ":")
			if !ok {
				continue
			}
			if port, err := strconv.ParseUint(hexPort, 16, 16); err == nil {
				out[uint16(port)] = true
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// waitListening waits until every port listens in pid's network namespace, and returns the
// ports that still did not when timeout passed or ctx ended.
func waitListening(ctx context.Context, pid int, ports []uint16, timeout time.Duration) ([]uint16, error) {
	deadline := time.Now().Add(timeout)
	for {
		listening, err := listeningTCPPorts(pid)
		if err != nil {
			return ports, err
		}
		var missing []uint16
		for _, p := range ports {
			if !listening[p] {
				missing = append(missing, p)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			return missing, nil
		}
		select {
		case <-ctx.Done():
			return missing, ctx.Err()
		case <-time.After(portsReadyPoll):
		}
	}
}
