package raft_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/raft"
)

// counter is a state machine holding one number.
type counter struct{ n int }

func (c *counter) Apply(_ uint64, payload []byte) any {
	c.n += len(payload)
	return c.n
}
func (c *counter) Snapshot() ([]byte, error) { return []byte(fmt.Sprint(c.n)), nil }
func (c *counter) Restore(_ uint64, state []byte) error {
	_, err := fmt.Sscan(string(state), &c.n)
	return err
}

// Example starts a one-manager group and replicates two proposals. Managers
// after the first call Join with this one's address instead of Bootstrap.
func Example() {
	dir, err := os.MkdirTemp("", "raft-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}

	node, err := raft.NewNode(raft.Config{
		NodeID:   "manager-1",
		Addr:     lis.Addr().String(),
		StateDir: dir,
		Dial: func(_ context.Context, addr string) (*grpc.ClientConn, error) {
			return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, &counter{})
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(256<<20), grpc.MaxSendMsgSize(256<<20))
	api.RegisterRaftServer(srv, node.Server())
	go srv.Serve(lis)
	defer srv.Stop()
	defer node.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if node.HasState() {
		err = node.Restart(ctx)
	} else {
		err = node.Bootstrap(ctx)
	}
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range []string{"abc", "de"} {
		res, err := node.Propose(ctx, []byte(p))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("applied, counter is", res)
	}
	fmt.Println("leader:", node.IsLeader(), "members:", len(node.Members()))
	// Output:
	// applied, counter is 3
	// applied, counter is 5
	// leader: true members: 1
}
