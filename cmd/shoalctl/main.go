// Command shoalctl is the operator CLI of a shoal cluster. It talks to the
// Control gRPC service of a manager over that manager's local unix socket
// and offers commands shaped like `docker swarm`, `docker node`,
// `docker service` and `docker network`:
//
//	shoalctl cluster info
//	shoalctl cluster join-token worker|manager [--rotate] [-q]
//	shoalctl node ls | inspect | ps | promote | demote | update | drain | activate | pause | rm
//	shoalctl service create | ls | ps | inspect | update | scale | rollback | rm
//	shoalctl network create | ls | inspect | rm
//
// Every RPC is bounded by --timeout. Commands that change a service then
// follow its tasks until the service converges (unless --detach), a wait
// bounded by their own --wait-timeout, which is unbounded by default.
//
// It imports only the project's api package: everything it knows about the
// cluster it learns through the Control service.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/shoal/shoal/api"
)

const (
	// defaultSocket is where shoald serves the Control API for local callers.
	defaultSocket = "/var/run/shoal/control.sock"
	// socketEnv overrides defaultSocket when --socket is not given.
	socketEnv      = "SHOAL_SOCKET"
	defaultTimeout = 10 * time.Second
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one shoalctl invocation and returns its exit status. Errors
// are printed to stderr as "Error: <what was wrong>", one line per error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCommand(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	printError(stderr, err)
	return 1
}

// printError writes err for a human. An unreachable manager is reported on
// its own, without the operation that tried to reach it; joined errors (one
// per NODE argument) get one "Error:" line each.
func printError(w io.Writer, err error) {
	var unreachable *unreachableError
	if errors.As(err, &unreachable) {
		fmt.Fprintf(w, "Error: %v\n", unreachable)
		return
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			printError(w, e)
		}
		return
	}
	fmt.Fprintf(w, "Error: %v\n", err)
}

// app holds what every command shares: the output streams and the global
// connection flags.
type app struct {
	stdout, stderr io.Writer

	socket  string
	timeout time.Duration
	// socketSet says --socket was given; otherwise SHOAL_SOCKET is consulted.
	socketSet func() bool
}

// newRootCommand builds the whole command tree writing to stdout and stderr.
func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	a := &app{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "shoalctl",
		Short: "Manage a shoal cluster",
		Long: "shoalctl manages a shoal cluster through the Control API of a manager,\n" +
			"reached over the manager's local unix socket.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{err: err, cmdPath: cmd.CommandPath()}
	})

	flags := root.PersistentFlags()
	flags.StringVar(&a.socket, "socket", defaultSocket,
		"unix socket of the shoal manager's Control API (or $"+socketEnv+")")
	flags.DurationVar(&a.timeout, "timeout", defaultTimeout,
		"how long a command may wait for the manager (for each poll, while following a service)")
	a.socketSet = func() bool { return flags.Changed("socket") }

	root.AddCommand(newClusterCommand(a), newNodeCommand(a), newServiceCommand(a), newNetworkCommand(a))
	return root
}

// socketPath is the socket to dial: --socket, else $SHOAL_SOCKET, else the default.
func (a *app) socketPath() string {
	path := a.socket
	if !a.socketSet() {
		if env := os.Getenv(socketEnv); env != "" {
			path = env
		}
	}
	return strings.TrimPrefix(path, "unix://")
}

// withControl connects to the manager, runs fn with a Control client and a
// context bounded by --timeout, and closes the connection. Errors of RPCs
// made through the client carry the server's status message (not gRPC's
// "rpc error: code = ..." text) and keep their status code.
func (a *app) withControl(cmd *cobra.Command, fn func(ctx context.Context, c api.ControlClient) error) error {
	return a.withConnection(cmd, func(c api.ControlClient) error {
		ctx, cancel := a.callContext(cmd.Context())
		defer cancel()
		return fn(ctx, c)
	})
}

// withConnection connects to the manager, runs fn with a Control client and
// closes the connection. Unlike withControl it sets no deadline: fn bounds
// each of its RPCs with callContext, so it may wait longer than --timeout
// in all (following a service until it converges).
func (a *app) withConnection(cmd *cobra.Command, fn func(c api.ControlClient) error) error {
	if a.timeout <= 0 {
		return fmt.Errorf("invalid --timeout %v: must be positive", a.timeout)
	}
	socket := a.socketPath()
	if socket == "" {
		return fmt.Errorf("invalid --socket: the path is empty")
	}
	d := &recordingDialer{socket: socket}
	conn, err := grpc.NewClient("unix://"+socket,
		grpc.WithTransportCredentials(insecure.NewCredentials()), // local socket, mode 0600
		grpc.WithContextDialer(d.dial),
		grpc.WithUnaryInterceptor(d.explainErrors),
	)
	if err != nil {
		return fmt.Errorf("set up a connection to %s: %w", socket, err)
	}
	defer conn.Close()
	return fn(api.NewControlClient(conn))
}

// callContext bounds a step of RPCs by --timeout.
func (a *app) callContext(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, a.timeout)
}

// recordingDialer dials the manager's socket and remembers why the last
// attempt failed, so an Unavailable RPC can be explained in plain words.
type recordingDialer struct {
	socket string

	mu      sync.Mutex
	lastErr error
}

func (d *recordingDialer) dial(ctx context.Context, _ string) (net.Conn, error) {
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "unix", d.socket)
	d.mu.Lock()
	d.lastErr = err
	d.mu.Unlock()
	return conn, err
}

func (d *recordingDialer) lastDialErr() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastErr
}

// explainErrors is a unary client interceptor turning gRPC errors into
// errors a person can read.
func (d *recordingDialer) explainErrors(ctx context.Context, method string, req, reply any,
	cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch {
	case st.Code() == codes.Unavailable && d.lastDialErr() != nil:
		return &unreachableError{socket: d.socket, reason: dialReason(d.lastDialErr())}
	case errors.Is(ctx.Err(), context.Canceled):
		return &rpcError{st: status.New(codes.Canceled, "interrupted")}
	case (st.Code() == codes.DeadlineExceeded || st.Code() == codes.Canceled) && deadlineReached(ctx):
		return &rpcError{st: status.New(codes.DeadlineExceeded,
			"the manager did not answer in time (raise --timeout)")}
	}
	return &rpcError{st: st}
}

// deadlineReached says ctx's deadline has passed or is about to. The server
// gets the deadline with the call and, on the same host, may give up a
// moment before the client notices: with DeadlineExceeded, or by resetting
// the stream (Canceled).
func deadlineReached(ctx context.Context) bool {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return true
	}
	deadline, ok := ctx.Deadline()
	return ok && time.Until(deadline) < 250*time.Millisecond
}

// rpcError is a failed RPC: it prints as the server's message and keeps the
// status for status.Code.
type rpcError struct{ st *status.Status }

func (e *rpcError) Error() string              { return e.st.Message() }
func (e *rpcError) GRPCStatus() *status.Status { return e.st }

// unreachableError says the manager's socket could not be connected to.
type unreachableError struct {
	socket string
	reason string
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach the shoal manager at %s: %s (is shoald running? set --socket or %s)",
		e.socket, e.reason, socketEnv)
}

func (e *unreachableError) GRPCStatus() *status.Status {
	return status.New(codes.Unavailable, e.Error())
}

// dialReason shortens "dial unix /path: connect: no such file or directory"
// to "connect: no such file or directory": the path is already in the message.
func dialReason(err error) string {
	var sysErr *os.SyscallError
	if errors.As(err, &sysErr) {
		return sysErr.Error()
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		return opErr.Err.Error()
	}
	return err.Error()
}

// usageError is a mistake in how a command was called; it prints with a
// pointer to the command's help.
type usageError struct {
	err     error
	cmdPath string
}

func (e *usageError) Error() string {
	return fmt.Sprintf("%v\nSee '%s --help'.", e.err, e.cmdPath)
}

func (e *usageError) Unwrap() error { return e.err }

// requireArgs checks a command got at least one positional argument, what.
func requireArgs(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return &usageError{
				err:     fmt.Errorf("%q requires at least one %s argument", cmd.CommandPath(), what),
				cmdPath: cmd.CommandPath(),
			}
		}
		return nil
	}
}

// exactArgs checks a command got exactly n positional arguments, described
// by what.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		err := fmt.Errorf("%q requires exactly %d argument(s) (%s), got %d", cmd.CommandPath(), n, what, len(args))
		if n == 0 {
			err = fmt.Errorf("%q accepts no arguments, got %q", cmd.CommandPath(), args)
		}
		return &usageError{err: err, cmdPath: cmd.CommandPath()}
	}
}
