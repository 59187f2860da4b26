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

func runClientLoop([]*keepAliveConn, func(*keepAliveConn)) error { return errLoopUnsupported }

func newLoopIO(*loopClient, net.Conn) io.ReadWriter { return nil }
