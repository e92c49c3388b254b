package main

// This file owns the TCP echo side: each connection first reads the
// identity as one line of JSON, then gets back every byte it sends.

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
)

// echoServer serves TCP echo connections on one listener.
type echoServer struct {
	identity func() Identity
	log      *slog.Logger

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup // one per tracked connection
}

func newEchoServer(identity func() Identity, log *slog.Logger) *echoServer {
	return &echoServer{identity: identity, log: log, conns: make(map[net.Conn]struct{})}
}

// Serve accepts connections on ln until Close; it returns nil after Close.
func (s *echoServer) Serve(ln net.Listener) error {
	for {
		conn, err := ln.Accept()
		if err != nil {
			if s.isClosed() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		if !s.track(conn) {
			conn.Close()
			return nil
		}
		go func() {
			defer s.untrack(conn)
			if err := s.handle(conn); err != nil && !s.isClosed() {
				s.log.Debug("echo connection ended", "remote", conn.RemoteAddr(), "err", err)
			}
		}()
	}
}

// handle writes the identity line to conn, then echoes until the peer
// closes its side.
func (s *echoServer) handle(conn net.Conn) error {
	defer conn.Close()
	id := s.identity()
	if host, _, err := net.SplitHostPort(conn.RemoteAddr().String()); err == nil {
		id.Peer = host
	}
	if err := json.NewEncoder(conn).Encode(id); err != nil {
		return err
	}
	_, err := io.Copy(conn, conn)
	return err
}

// Close ends every open connection and waits for their handlers; the
// caller closes the listener.
func (s *echoServer) Close() {
	s.mu.Lock()
	s.closed = true
	for conn := range s.conns {
		conn.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *echoServer) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// track registers conn, unless the server is closed; Close waits for a
// tracked connection until untrack.
func (s *echoServer) track(conn net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[conn] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *echoServer) untrack(conn net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, conn)
	s.wg.Done()
}
