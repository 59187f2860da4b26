package main

import (
	"io"
	"strings"
	"testing"
)

// TestServeClusterFlags: wrong cluster flags stop `bookd serve` before it
// serves, with an error that names the flag.
func TestServeClusterFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"key not base64", []string{"--gossip-addr", "127.0.0.1:0", "--gossip-key", "not base64!"}, "--gossip-key"},
		{"key of 10 bytes", []string{"--gossip-addr", "127.0.0.1:0", "--gossip-key", "MDEyMzQ1Njc4OQ=="}, "--gossip-key"},
		{"key without gossip", []string{"--gossip-key", "MDEyMzQ1Njc4OWFiY2RlZg=="}, "--gossip-key"},
		{"bad seed", []string{"--join", "127.0.0.1"}, "Join"},
		{"half of TLS", []string{"--actor-tls-cert", "cert.pem"}, "--actor-tls"},
		{"missing TLS files", []string{"--actor-tls-cert", "a.pem", "--actor-tls-key", "b.pem", "--actor-tls-ca", "c.pem"}, "--actor-tls"},
		{"redis not a URL", []string{"--redis", "localhost:6379"}, "--redis"},
		{"negative idle timeout", []string{"--idle-timeout", "-1s"}, "--idle-timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Serve{Stdout: io.Discard, Stderr: io.Discard}
			args := append([]string{"--http", "127.0.0.1:0", "--data", t.TempDir(), "--demo=false", "--log-level", "error"}, tt.args...)
			err := s.Run(t.Context(), args)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("serve %v = %v, want an error naming %s", tt.args, err, tt.want)
			}
		})
	}
}
