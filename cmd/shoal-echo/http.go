package main

// This file owns the HTTP side: GET / answers the identity as one line of
// JSON, GET /healthz answers "ok".

import (
	"encoding/json"
	"net"
	"net/http"
)

// newHTTPHandler serves the identity that identity returns at the time of
// each request.
func newHTTPHandler(identity func() Identity) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		id := identity()
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			id.Peer = host
		}
		// Encode writes the object and a newline: one line of JSON.
		_ = json.NewEncoder(w).Encode(id)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}
