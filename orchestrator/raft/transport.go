package raft

// This file owns the sending half of the network between managers: one
// goroutine and a bounded queue per peer, each feeding a client-streaming
// Raft.Stream that is re-opened with backoff when it breaks, plus a Ping
// loop per peer that tells whether the peer is reachable. The receiving
// half is the Raft service in service.go. Nothing here blocks the Ready
// loop: a message that cannot be queued is dropped and reported, and raft
// retries.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	raftpb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
)

const (
	peerQueueSize   = 1024
	minBackoff      = 50 * time.Millisecond
	maxBackoff      = time.Second
	snapshotTimeout = 5 * time.Minute
	// removedMarker is in the status message a manager answers with when a
	// removed member sends to it; the sender then stops.
	removedMarker = "raft member was removed from the group"
)

// callOptions are the options of every call to another manager: snapshots
// travel whole in one message.
func callOptions() []grpc.CallOption {
	return []grpc.CallOption{grpc.MaxCallSendMsgSize(maxMsgSize), grpc.MaxCallRecvMsgSize(maxMsgSize)}
}

// peerReport is what the transport tells the Ready loop about a peer.
type peerReport struct {
	id          uint64
	unreachable bool
	snapshot    bool // snapStatus is set
	snapStatus  raft.SnapshotStatus
}

// dropFunc decides whether a message from one raft ID to another is lost;
// m is nil for pings. Tests use it to cut links.
type dropFunc func(from, to uint64, m *raftpb.Message) bool

type transport struct {
	n   *Node
	cfg Config
	log *slog.Logger

	self   uint64
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	peers   map[uint64]*peer
	stopped bool

	drop atomic.Pointer[dropFunc]
}

func newTransport(n *Node, cfg Config) *transport {
	ctx, cancel := context.WithCancel(context.Background())
	return &transport{n: n, cfg: cfg, log: n.log, ctx: ctx, cancel: cancel, peers: map[uint64]*peer{}}
}

// start sets the node's own raft ID and starts a peer for every other
// member.
func (t *transport) start(self uint64, members []*api.RaftMember) {
	t.mu.Lock()
	t.self = self
	t.mu.Unlock()
	t.setPeers(members)
}

// setPeers makes the peers match members (self excluded).
func (t *transport) setPeers(members []*api.RaftMember) {
	want := map[uint64]string{}
	for _, m := range members {
		want[m.GetRaftId()] = m.GetAddr()
	}
	t.mu.Lock()
	var gone []uint64
	for id := range t.peers {
		if _, ok := want[id]; !ok {
			gone = append(gone, id)
		}
	}
	t.mu.Unlock()
	for _, id := range gone {
		t.removePeer(id)
	}
	for id, addr := range want {
		t.addPeer(id, addr)
	}
}

// addPeer starts a peer for id at addr, replacing one with another address.
func (t *transport) addPeer(id uint64, addr string) {
	t.mu.Lock()
	if t.stopped || id == t.self {
		t.mu.Unlock()
		return
	}
	old := t.peers[id]
	if old != nil && old.addr == addr {
		t.mu.Unlock()
		return
	}
	p := newPeer(t, id, addr)
	t.peers[id] = p
	t.wg.Add(2)
	go p.runSender()
	go p.runPinger()
	t.mu.Unlock()
	if old != nil {
		old.close()
	}
}

// removePeer stops the peer for id; its queued messages are dropped.
func (t *transport) removePeer(id uint64) {
	t.mu.Lock()
	p := t.peers[id]
	delete(t.peers, id)
	t.mu.Unlock()
	if p != nil {
		p.close()
	}
}

func (t *transport) peer(id uint64) *peer {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.peers[id]
}

// send queues messages without blocking. It returns reports for the ones
// it could not queue (unknown peer, full queue), for the Ready loop to
// hand to raft.
func (t *transport) send(msgs []*raftpb.Message) []peerReport {
	var failed []peerReport
	for _, m := range msgs {
		p := t.peer(m.GetTo())
		if p != nil {
			select {
			case p.queue <- m:
				continue
			default:
			}
		}
		failed = append(failed, failureReport(m))
	}
	return failed
}

// failureReport is the report for a message that was not delivered.
func failureReport(m *raftpb.Message) peerReport {
	r := peerReport{id: m.GetTo(), unreachable: true}
	if m.GetType() == raftpb.MsgSnap {
		r.snapshot, r.snapStatus = true, raft.SnapshotFailure
	}
	return r
}

// reportToNode hands r to the Ready loop, unless the transport stops.
func (t *transport) reportToNode(r peerReport) {
	select {
	case t.n.reportc <- r:
	case <-t.ctx.Done():
	}
}

// conn returns the client connection to peer id, for calls other than the
// raft stream (forwarding to the leader).
func (t *transport) conn(ctx context.Context, id uint64) (*grpc.ClientConn, error) {
	p := t.peer(id)
	if p == nil {
		return nil, fmt.Errorf("no address known for raft member %x", id)
	}
	return p.getConn(ctx)
}

// reachable reports whether peer id answered recently.
func (t *transport) reachable(id uint64) bool {
	p := t.peer(id)
	if p == nil {
		return false
	}
	last := p.lastContact.Load()
	return last != 0 && time.Since(time.Unix(0, last)) <= t.cfg.reachableWindow
}

// markContact records that peer id was heard from.
func (t *transport) markContact(id uint64) {
	if p := t.peer(id); p != nil {
		p.lastContact.Store(time.Now().UnixNano())
	}
}

func (t *transport) setDropFilter(f dropFunc) {
	if f == nil {
		t.drop.Store(nil)
		return
	}
	t.drop.Store(&f)
}

func (t *transport) dropped(from, to uint64, m *raftpb.Message) bool {
	f := t.drop.Load()
	return f != nil && (*f)(from, to, m)
}

// stop stops every peer and closes their connections.
func (t *transport) stop() {
	t.mu.Lock()
	t.stopped = true
	peers := t.peers
	t.peers = map[uint64]*peer{}
	t.mu.Unlock()
	t.cancel()
	for _, p := range peers {
		p.close()
	}
	t.wg.Wait()
}

// peer is the link to one other manager.
type peer struct {
	t      *transport
	id     uint64
	addr   string
	queue  chan *raftpb.Message
	ctx    context.Context
	cancel context.CancelFunc

	connMu sync.Mutex
	conn   *grpc.ClientConn
	closed bool

	lastContact atomic.Int64 // unix nanoseconds; 0: never
}

func newPeer(t *transport, id uint64, addr string) *peer {
	ctx, cancel := context.WithCancel(t.ctx)
	return &peer{t: t, id: id, addr: addr, queue: make(chan *raftpb.Message, peerQueueSize), ctx: ctx, cancel: cancel}
}

// close stops the peer's goroutines and closes its connection.
func (p *peer) close() {
	p.cancel()
	p.connMu.Lock()
	defer p.connMu.Unlock()
	p.closed = true
	if p.conn != nil {
		if err := p.conn.Close(); err != nil {
			p.t.log.Debug("close connection", "peer", hexID(p.id), "err", err)
		}
		p.conn = nil
	}
}

// getConn dials the peer once; gRPC reconnects the connection by itself.
func (p *peer) getConn(ctx context.Context) (*grpc.ClientConn, error) {
	p.connMu.Lock()
	defer p.connMu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("peer %x: %w", p.id, ErrStopped)
	}
	if p.conn != nil {
		return p.conn, nil
	}
	conn, err := p.t.cfg.Dial(ctx, p.addr)
	if err != nil {
		return nil, fmt.Errorf("dial raft member %x at %s: %w", p.id, p.addr, err)
	}
	p.conn = conn
	return conn, nil
}

type raftStream = grpc.ClientStreamingClient[api.RaftMessage, api.RaftStreamResponse]

// runSender sends queued messages over one long-lived stream. After a
// failure it drops messages (reporting them) until the backoff passed.
func (p *peer) runSender() {
	defer p.t.wg.Done()
	var (
		stream       raftStream
		cancelStream context.CancelFunc
		backoff      = minBackoff
		retryAt      time.Time
	)
	closeStream := func() {
		if cancelStream != nil {
			cancelStream()
		}
		stream, cancelStream = nil, nil
	}
	defer closeStream()
	fail := func(m *raftpb.Message, err error) {
		closeStream()
		p.t.log.Debug("send to raft member failed", "peer", hexID(p.id), "addr", p.addr, "err", err)
		retryAt = time.Now().Add(backoff)
		backoff = min(2*backoff, maxBackoff)
		p.t.reportToNode(failureReport(m))
	}
	for {
		var m *raftpb.Message
		select {
		case <-p.ctx.Done():
			return
		case m = <-p.queue:
		}
		if p.t.dropped(p.t.self, p.id, m) {
			if m.GetType() == raftpb.MsgSnap {
				p.t.reportToNode(failureReport(m))
			}
			continue
		}
		if time.Now().Before(retryAt) {
			p.t.reportToNode(failureReport(m))
			continue
		}
		if m.GetType() == raftpb.MsgSnap {
			if err := p.sendSnapshot(m); err != nil {
				fail(m, err)
				continue
			}
			backoff = minBackoff
			continue
		}
		if stream == nil {
			var err error
			stream, cancelStream, err = p.openStream()
			if err != nil {
				fail(m, err)
				continue
			}
		}
		if err := p.sendOn(stream, m); err != nil {
			fail(m, err)
			continue
		}
		backoff = minBackoff
	}
}

func (p *peer) openStream() (raftStream, context.CancelFunc, error) {
	conn, err := p.getConn(p.ctx)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(p.ctx)
	stream, err := api.NewRaftClient(conn).Stream(ctx, callOptions()...)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("open raft stream: %w", err)
	}
	return stream, cancel, nil
}

// sendOn sends m on stream. When the stream broke, the error is the one the
// peer ended it with.
func (p *peer) sendOn(stream raftStream, m *raftpb.Message) error {
	data, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("marshal %s: %w", m.GetType(), err)
	}
	err = stream.Send(&api.RaftMessage{Message: data})
	if errors.Is(err, io.EOF) {
		// The server ended the stream; its status says why.
		_, err = stream.CloseAndRecv()
		if err == nil {
			err = errors.New("raft stream closed by peer")
		}
	}
	if err != nil {
		p.checkRemoved(err)
		return err
	}
	return nil
}

// sendSnapshot sends a snapshot message on its own stream and waits until
// the peer took it, then tells raft the snapshot was delivered.
func (p *peer) sendSnapshot(m *raftpb.Message) error {
	conn, err := p.getConn(p.ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(p.ctx, snapshotTimeout)
	defer cancel()
	stream, err := api.NewRaftClient(conn).Stream(ctx, callOptions()...)
	if err != nil {
		return fmt.Errorf("open snapshot stream: %w", err)
	}
	if err := p.sendOn(stream, m); err != nil {
		return fmt.Errorf("send snapshot: %w", err)
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		p.checkRemoved(err)
		return fmt.Errorf("send snapshot: %w", err)
	}
	p.t.log.Debug("sent snapshot", "peer", hexID(p.id), "index", m.GetSnapshot().GetMetadata().GetIndex())
	p.t.reportToNode(peerReport{id: p.id, snapshot: true, snapStatus: raft.SnapshotFinish})
	return nil
}

// checkRemoved stops the node if the peer said this node was removed.
func (p *peer) checkRemoved(err error) {
	if s, ok := status.FromError(err); ok && s.Code() == codes.FailedPrecondition && strings.Contains(s.Message(), removedMarker) {
		select {
		case p.t.n.removedc <- struct{}{}:
		default:
		}
	}
}

// runPinger pings the peer every ping interval to tell reachability.
func (p *peer) runPinger() {
	defer p.t.wg.Done()
	t := time.NewTicker(p.t.cfg.pingInterval)
	defer t.Stop()
	for {
		p.ping()
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *peer) ping() {
	if p.t.dropped(p.t.self, p.id, nil) || p.t.dropped(p.id, p.t.self, nil) {
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.t.cfg.pingInterval)
	defer cancel()
	conn, err := p.getConn(ctx)
	if err != nil {
		return
	}
	resp, err := api.NewRaftClient(conn).Ping(ctx, &api.PingRequest{})
	if err == nil && resp.GetRaftId() == p.id {
		p.lastContact.Store(time.Now().UnixNano())
	}
}
