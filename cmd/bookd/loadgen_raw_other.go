//go:build !linux

package main

import (
	"io"
	"net"
)

// connIO returns c: raw system calls are used on Linux only (see
// loadgen_raw_linux.go).
func connIO(c net.Conn) io.ReadWriter { return c }
