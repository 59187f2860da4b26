//go:build !linux

package main

import (
	"context"
	"io"
	"net"
	"time"
)

// loopClient exists on Linux only (see loadgen_loop_linux.go); elsewhere
// every client has a goroutine.
type loopClient struct {
	deadline time.Time
	ctx      context.Context
}

func (*loopClient) closing() {}

func (*loopClient) halted() bool { return false }

func (*loopClient) dial(ctx context.Context, dial func(context.Context) (net.Conn, error)) (net.Conn, error) {
	return dial(ctx)
}

func runClientLoop([]*keepAliveConn, func(*keepAliveConn)) error { return errLoopUnsupported }

func newLoopIO(*loopClient, net.Conn) io.ReadWriter { return nil }
