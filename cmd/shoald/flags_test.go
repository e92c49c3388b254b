package main

import (
	"strings"
	"testing"
	"time"
)

func validConfig() nodeConfig {
	return nodeConfig{
		stateDir:            "/tmp/x",
		listenRemoteAPI:     "127.0.0.1:4242",
		tickInterval:        100 * time.Millisecond,
		electionTick:        10,
		heartbeatTick:       1,
		certExpiry:          time.Hour,
		dispatcherHeartbeat: 5 * time.Second,
	}
}

// Every bad flag is refused with an error naming the flag.
func TestValidateNamesTheFlag(t *testing.T) {
	tests := []struct {
		name   string
		change func(*nodeConfig)
		want   string
	}{
		{"no state dir", func(c *nodeConfig) { c.stateDir = "" }, "--state-dir"},
		{"join addr without token", func(c *nodeConfig) { c.joinAddr = "127.0.0.1:1" }, "--join-token"},
		{"token without join addr", func(c *nodeConfig) {
			c.joinToken = "SHOAL-1-" + strings.Repeat("0", 50) + "-" + strings.Repeat("0", 25)
		}, "--join-addr"},
		{"malformed token", func(c *nodeConfig) { c.joinAddr, c.joinToken = "127.0.0.1:1", "SHOAL-2-x" }, "--join-token"},
		{"zero tick", func(c *nodeConfig) { c.tickInterval = 0 }, "--raft-tick"},
		{"zero heartbeat tick", func(c *nodeConfig) { c.heartbeatTick = 0 }, "--heartbeat-tick"},
		{"election not above heartbeat", func(c *nodeConfig) { c.electionTick = 1 }, "--election-tick"},
		{"short certificates", func(c *nodeConfig) { c.certExpiry = time.Second }, "--cert-expiry"},
		{"zero dispatcher heartbeat", func(c *nodeConfig) { c.dispatcherHeartbeat = 0 }, "--dispatcher-heartbeat"},
		{"listen address without port", func(c *nodeConfig) { c.listenRemoteAPI = "127.0.0.1" }, "--listen-remote-api"},
		{"advertise address without port", func(c *nodeConfig) { c.advertiseAddr = "node-1" }, "--advertise-addr"},
		{"every address, nothing to advertise", func(c *nodeConfig) { c.listenRemoteAPI = "0.0.0.0:4242" }, "--advertise-addr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.change(&c)
			err := c.validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("validate() = %v, want an error naming %s", err, tt.want)
			}
		})
	}
	c := validConfig()
	c.listenRemoteAPI, c.advertiseAddr = "0.0.0.0:4242", "192.0.2.10:4242"
	if err := c.validate(); err != nil {
		t.Fatalf("listening everywhere with an advertise address: %v", err)
	}
	if c := validConfig(); c.validate() != nil {
		t.Fatalf("the valid config is refused: %v", c.validate())
	}
}

func TestParseLevel(t *testing.T) {
	for _, s := range []string{"debug", "INFO", "warn", "warning", "error"} {
		if _, err := parseLevel(s); err != nil {
			t.Errorf("parseLevel(%q): %v", s, err)
		}
	}
	if _, err := parseLevel("loud"); err == nil || !strings.Contains(err.Error(), "--log-level") {
		t.Fatalf("parseLevel(loud) = %v, want an error naming --log-level", err)
	}
}
