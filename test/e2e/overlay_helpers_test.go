package e2e

// This file holds what the overlay tests use to look at a multi-node cluster's tasks from inside
// their namespaces: where each task runs and its netns pin, HTTP and ICMP probes from one task to
// another, and a client that keeps polling an address and records who answers.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/netprobe"
)

// placedTask is a running task of a bed cluster: its node, address and namespace.
type placedTask struct {
	task  *api.Task
	node  int    // n of node-n
	ip    string // on its first network, without prefix length
	netns string // the pin of its namespace in its node's state dir
}

// placedTasks returns the service's running tasks by slot, each with where it runs.
func (c *cluster) placedTasks(service string) (map[uint64]placedTask, error) {
	v, err := c.view(service)
	if err != nil {
		return nil, err
	}
	out := map[uint64]placedTask{}
	for _, t := range v.running() {
		var n int
		if _, err := fmt.Sscanf(v.host[t.NodeId], "node-%d", &n); err != nil {
			return nil, fmt.Errorf("task %s on host %q: %w", t.Id, v.host[t.NodeId], err)
		}
		if len(t.Networks) == 0 {
			return nil, fmt.Errorf("task %s has no network attachment", t.Id)
		}
		p, err := netip.ParsePrefix(t.Networks[0].Address)
		if err != nil {
			return nil, fmt.Errorf("task %s: %w", t.Id, err)
		}
		out[t.Slot] = placedTask{task: t, node: n, ip: p.Addr().String(), netns: filepath.Join(c.node(n).dir, "netns", t.Id)}
	}
	return out, nil
}

// waitPlaced waits until the service has want running tasks, each answering as itself from its
// own namespace, and returns them by slot.
func (c *cluster) waitPlaced(t *testing.T, service string, want int) map[uint64]placedTask {
	t.Helper()
	var placed map[uint64]placedTask
	eventually(t, 180*time.Second, fmt.Sprintf("%d tasks of %s running and answering", want, service), func() error {
		var err error
		if placed, err = c.placedTasks(service); err != nil {
			return err
		}
		if len(placed) != want {
			return fmt.Errorf("%d running", len(placed))
		}
		for _, p := range placed {
			id, err := askFrom(p.netns, p.ip)
			if err != nil {
				return fmt.Errorf("task %s on node %d at %s: %w", p.task.Id, p.node, p.ip, err)
			}
			if id.Task != p.task.Id {
				return fmt.Errorf("%s answers as task %s, want %s", p.ip, id.Task, p.task.Id)
			}
		}
		return nil
	})
	return placed
}

// askFrom asks the shoal-echo at addr who it is (GET / on port 8080), from inside the namespace
// at netnsPath. The connection is dialled on the namespace's thread (an http.Client would dial
// on a goroutine of its own, in whatever namespace that runs).
func askFrom(netnsPath, addr string) (identity, error) {
	return askWithin(netnsPath, addr, 8080, time.Second)
}

// askPort is askFrom at another port than shoal-echo's own.
func askPort(netnsPath, addr string, port int) (identity, error) {
	return askWithin(netnsPath, addr, port, time.Second)
}

// askWithin asks addr:port who it is, giving up on the TCP handshake after dialTimeout.
func askWithin(netnsPath, addr string, port int, dialTimeout time.Duration) (identity, error) {
	var id identity
	conn, err := dialWithin(netnsPath, net.JoinHostPort(addr, strconv.Itoa(port)), dialTimeout)
	if err != nil {
		return id, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	req, err := http.NewRequest(http.MethodGet, "http://"+net.JoinHostPort(addr, strconv.Itoa(port))+"/", nil)
	if err != nil {
		return id, err
	}
	req.Close = true
	if err := req.Write(conn); err != nil {
		return id, fmt.Errorf("send a request to %s: %w", addr, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return id, fmt.Errorf("read the answer of %s: %w", addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return id, err
	}
	if err := json.Unmarshal(b, &id); err != nil {
		return id, fmt.Errorf("answer %q of %s: %w", b, addr, err)
	}
	return id, nil
}

// pingFrom sends ICMP echo from inside the namespace at netnsPath to addr.
func pingFrom(netnsPath, addr string) error {
	n, err := ns.GetNS(netnsPath)
	if err != nil {
		return err
	}
	defer n.Close()
	return netprobe.Ping(n, netip.MustParseAddr(addr), 5*time.Second)
}

// dialFrom opens a TCP connection from inside the namespace at netnsPath.
func dialFrom(netnsPath, addr string) (net.Conn, error) {
	return dialWithin(netnsPath, addr, time.Second)
}

// dialWithin is dialFrom giving up on the handshake after timeout.
func dialWithin(netnsPath, addr string, timeout time.Duration) (net.Conn, error) {
	var conn net.Conn
	err := ns.WithNetNSPath(netnsPath, func(ns.NetNS) error {
		var err error
		conn, err = net.DialTimeout("tcp", addr, timeout)
		return err
	})
	return conn, err
}

// answer is who answered a poll, and when; Task is empty when nobody did.
type answer struct {
	At   time.Time
	Task string
	Err  string // why nobody answered
}

// pollDialTimeout bounds a poll's TCP handshake. A SYN sent while the address still led to
// the task's old place is lost, and the kernel would resend it only after a second: a short
// timeout and a fresh dial keep the time a poller first reaches a moved task within about
// this much of when the path to it was there.
const pollDialTimeout = 200 * time.Millisecond

// poller asks an address who it is, from a client namespace, every interval until stopped.
type poller struct {
	addr, from string
	stop       chan struct{}
	done       chan struct{}
	mu         sync.Mutex
	answers    []answer
}

func startPoller(from, addr string, interval time.Duration) *poller {
	p := &poller{addr: addr, from: from, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			id, err := askWithin(from, addr, 8080, pollDialTimeout)
			a := answer{At: time.Now()}
			if err == nil {
				a.Task = id.Task
			} else {
				a.Err = err.Error()
			}
			p.mu.Lock()
			p.answers = append(p.answers, a)
			p.mu.Unlock()
			select {
			case <-p.stop:
				return
			case <-time.After(interval):
			}
		}
	}()
	return p
}

// waitFor waits until task has answered, at most timeout.
func (p *poller) waitFor(task string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		_, ok := firstAnswerBy(p.answers, task)
		p.mu.Unlock()
		if ok {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// last is the latest answer, the zero answer before the first.
func (p *poller) last() answer {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.answers) == 0 {
		return answer{}
	}
	return p.answers[len(p.answers)-1]
}

// finish stops the poller and returns what it saw.
func (p *poller) finish() []answer {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.answers
}

// responders are the tasks that answered, in the order they first did.
func responders(answers []answer) []string {
	var out []string
	for _, a := range answers {
		if a.Task != "" && (len(out) == 0 || out[len(out)-1] != a.Task) {
			out = append(out, a.Task)
		}
	}
	return out
}

// checkOneResponder fails t unless the answers show the old task, then (once) the new one, and
// never the old one again: at no time did two containers answer for the address.
func checkOneResponder(t *testing.T, addr string, answers []answer, oldTask, newTask string) {
	t.Helper()
	seq := responders(answers)
	switch {
	case len(seq) == 2 && seq[0] == oldTask && seq[1] == newTask:
	case len(seq) == 1 && seq[0] == newTask:
	default:
		t.Errorf("%s was answered by %s; want %s, then %s, each once", addr, strings.Join(seq, " → "), oldTask, newTask)
	}
}

// firstAnswerBy is when task first answered, false if it never did.
func firstAnswerBy(answers []answer, task string) (time.Time, bool) {
	for _, a := range answers {
		if a.Task == task {
			return a.At, true
		}
	}
	return time.Time{}, false
}

// nodesOf lists the nodes the tasks run on, sorted.
func nodesOf(placed map[uint64]placedTask) []int {
	var out []int
	for _, p := range placed {
		out = append(out, p.node)
	}
	sort.Ints(out)
	return out
}

// onNode returns a task placed on node n.
func onNode(placed map[uint64]placedTask, n int) (placedTask, bool) {
	for _, p := range placed {
		if p.node == n {
			return p, true
		}
	}
	return placedTask{}, false
}
