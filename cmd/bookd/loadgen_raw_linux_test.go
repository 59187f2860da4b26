package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// TestRawIO: the raw reads and writes carry bytes unchanged through full
// socket buffers (so both wait in the poller), honour deadlines and see
// the peer's close as io.EOF.
func TestRawIO(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	defer server.Close()
	cio, sio := connIO(client), connIO(server)
	if _, ok := cio.(rawIO); !ok {
		t.Fatalf("connIO of a TCP connection is %T; want rawIO", cio)
	}

	want := make([]byte, 8<<20) // more than the socket buffers hold
	for i := range want {
		want[i] = byte(i * 7)
	}
	wrote := make(chan error, 1)
	go func() {
		n, err := cio.Write(want)
		if err == nil && n != len(want) {
			err = io.ErrShortWrite
		}
		wrote <- err
	}()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(sio, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := <-wrote; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the bytes read differ from the bytes written")
	}

	_ = server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := sio.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v; want os.ErrDeadlineExceeded", err)
	}
	_ = server.SetReadDeadline(time.Time{})
	_ = client.Close()
	if _, err := sio.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after the peer closed: %v; want io.EOF", err)
	}
}
