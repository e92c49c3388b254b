// Package ctlconn connects the operator CLIs (shoalctl, netctl) to the
// Control API of a manager, over that manager's local unix socket. It owns
// the flags every such CLI has (--socket, --timeout, $SHOAL_SOCKET), the
// dialing, and how a failed call reads: the server's message rather than
// gRPC's "rpc error: code = ..." text, and an unreachable manager said in
// plain words.
//
// A command's duties, in order:
//
//  1. AddFlags on the root command, once.
//  2. For each command run, Connect (or WithClient) after the flags are
//     parsed: it checks them and returns a client; nothing is dialed until
//     the first RPC.
//  3. Bound each RPC, or each step of RPCs, with CallContext.
//  4. Print a failure with PrintError: an unreachable manager is reported
//     once, without the operation that tried to reach it.
//
// It imports only the project's api package.
package ctlconn

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shoal/shoal/api"
)

const (
	// DefaultSocket is where shoald serves the Control API for local callers.
	DefaultSocket = "/var/run/shoal/control.sock"
	// SocketEnv overrides DefaultSocket when --socket is not given.
	SocketEnv = "SHOAL_SOCKET"
	// DefaultTimeout bounds each request when --timeout is not given.
	DefaultTimeout = 10 * time.Second
)

// Options are the connection flags of a CLI.
type Options struct {
	// Socket is --socket; SocketPath says which socket is dialed.
	Socket string
	// Timeout is --timeout: how long one request, or one step of requests,
	// may wait for the manager.
	Timeout time.Duration

	socketSet func() bool
}

// maxResponseBytes bounds a Control API answer the CLIs accept.
const maxResponseBytes = 512 << 20

// AddFlags registers --socket and --timeout as persistent flags of root, so
// that every subcommand has them.
func AddFlags(root *cobra.Command) *Options {
	o := &Options{}
	flags := root.PersistentFlags()
	flags.StringVar(&o.Socket, "socket", DefaultSocket,
		"unix socket of the shoal manager's Control API (or $"+SocketEnv+")")
	flags.DurationVar(&o.Timeout, "timeout", DefaultTimeout,
		"how long the manager may take to answer each request")
	o.socketSet = func() bool { return flags.Changed("socket") }
	return o
}

// SocketPath is the socket to dial: --socket, else $SHOAL_SOCKET, else the
// default; a "unix://" prefix is accepted.
func (o *Options) SocketPath() string {
	path := o.Socket
	if o.socketSet == nil || !o.socketSet() {
		if env := os.Getenv(SocketEnv); env != "" {
			path = env
		}
	}
	return strings.TrimPrefix(path, "unix://")
}

// Connect checks the flags and returns a Control client of the manager and
// the connection, which the caller closes. Nothing is dialed until the
// first RPC. Errors of RPCs made through the client carry the server's
// status message and keep their status code; an unreachable manager is an
// *UnreachableError.
func (o *Options) Connect() (api.ControlClient, *grpc.ClientConn, error) {
	if o.Timeout <= 0 {
		return nil, nil, fmt.Errorf("invalid --timeout %v: must be positive", o.Timeout)
	}
	socket := o.SocketPath()
	if socket == "" {
		return nil, nil, fmt.Errorf("invalid --socket: the path is empty")
	}
	d := &recordingDialer{socket: socket}
	conn, err := grpc.NewClient("unix://"+socket,
		grpc.WithTransportCredentials(insecure.NewCredentials()), // local socket, mode 0600
		grpc.WithContextDialer(d.dial),
		grpc.WithUnaryInterceptor(d.explainErrors),
		// Listings of a large cluster (100,000 tasks or bindings, the allocator's state dumps)
		// are tens of megabytes: far past gRPC's default 4 MiB.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxResponseBytes)),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("set up a connection to %s: %w", socket, err)
	}
	return api.NewControlClient(conn), conn, nil
}

// WithClient connects, runs fn and closes the connection. It sets no
// deadline: fn bounds its RPCs with CallContext.
func (o *Options) WithClient(fn func(c api.ControlClient) error) error {
	c, conn, err := o.Connect()
	if err != nil {
		return err
	}
	defer conn.Close()
	return fn(c)
}

// WithControl connects, runs fn with a context bounded by --timeout and
// closes the connection.
func (o *Options) WithControl(parent context.Context, fn func(ctx context.Context, c api.ControlClient) error) error {
	return o.WithClient(func(c api.ControlClient) error {
		ctx, cancel := o.CallContext(parent)
		defer cancel()
		return fn(ctx, c)
	})
}

// CallContext bounds a request, or a step of requests, by --timeout.
func (o *Options) CallContext(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, o.Timeout)
}
