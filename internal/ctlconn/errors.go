package ctlconn

// This file owns how a failed call reads: the dialer that remembers why
// the socket could not be reached, the interceptor turning gRPC errors
// into the server's message, and PrintError, which writes them for a
// person.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

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
		return &UnreachableError{Socket: d.socket, Reason: dialReason(d.lastDialErr())}
	case errors.Is(ctx.Err(), context.Canceled):
		return &rpcError{st: status.New(codes.Canceled, "interrupted")}
	case (st.Code() == codes.DeadlineExceeded || st.Code() == codes.Canceled) && DeadlineReached(ctx):
		return &rpcError{st: status.New(codes.DeadlineExceeded,
			"the manager did not answer in time (raise --timeout)")}
	}
	return &rpcError{st: st}
}

// DeadlineReached says ctx's deadline has passed or is about to. The server
// gets the deadline with the call and, on the same host, may give up a
// moment before the client notices: with DeadlineExceeded, or by resetting
// the stream (Canceled).
func DeadlineReached(ctx context.Context) bool {
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

// UnreachableError says the manager's socket could not be connected to.
type UnreachableError struct {
	Socket string
	// Reason is the system's, e.g. "connect: no such file or directory".
	Reason string
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the shoal manager at %s: %s (is shoald running? set --socket or %s)",
		e.Socket, e.Reason, SocketEnv)
}

// GRPCStatus makes status.Code report Unavailable.
func (e *UnreachableError) GRPCStatus() *status.Status {
	return status.New(codes.Unavailable, e.Error())
}

// IsUnreachable says err is, or wraps, an *UnreachableError: every further
// call would fail the same way.
func IsUnreachable(err error) bool {
	var u *UnreachableError
	return errors.As(err, &u)
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

// PrintError writes err for a person as "Error: <what was wrong>" lines. An
// unreachable manager is reported on its own, without the operation that
// tried to reach it; joined errors (one per argument) get a line each.
func PrintError(w io.Writer, err error) {
	var unreachable *UnreachableError
	if errors.As(err, &unreachable) {
		fmt.Fprintf(w, "Error: %v\n", unreachable)
		return
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			PrintError(w, e)
		}
		return
	}
	fmt.Fprintf(w, "Error: %v\n", err)
}
