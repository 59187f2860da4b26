package main

import (
	"io"
	"net"
	"syscall"
	"unsafe"
)

// rawIO reads and writes a non-blocking socket with raw system calls, ones
// that do not tell the Go scheduler they may block — which they do not: the
// socket is non-blocking, and EAGAIN waits in the poller through
// syscall.RawConn, deadlines included.
//
// Why: loadgen runs its clients on one P (benchflash's default). With plain
// system calls the runtime's monitor takes that P away from a write to a
// loopback socket that lasts past its 20 µs tick (the kernel delivers the
// segment to the receiver within the write) and another thread takes it
// over; the context switches cost about a quarter of loadgen's CPU.
type rawIO struct {
	rc syscall.RawConn
}

// connIO returns what the load client reads and writes c through: a rawIO
// when c is a plain socket, c itself otherwise (TLS).
func connIO(c net.Conn) io.ReadWriter {
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			return rawIO{rc}
		}
	}
	return c
}

func (r rawIO) Read(p []byte) (n int, err error) {
	if len(p) == 0 {
		return 0, nil
	}
	werr := r.rc.Read(func(fd uintptr) bool {
		m, e := rawSyscall(syscall.SYS_READ, fd, p)
		switch {
		case e == syscall.EAGAIN:
			return false // wait until readable
		case e != 0:
			err = e
		case m == 0:
			err = io.EOF
		default:
			n = m
		}
		return true
	})
	if err == nil {
		err = werr // a deadline, or a closed connection
	}
	return n, err
}

func (r rawIO) Write(p []byte) (n int, err error) {
	werr := r.rc.Write(func(fd uintptr) bool {
		for n < len(p) {
			m, e := rawSyscall(syscall.SYS_WRITE, fd, p[n:])
			switch {
			case e == syscall.EAGAIN:
				return false // wait until writable
			case e != 0:
				err = e
				return true
			}
			n += m
		}
		return true
	})
	if err == nil {
		err = werr
	}
	return n, err
}

// rawSyscall makes the read or write trap on fd with p (not empty),
// again while it is interrupted.
func rawSyscall(trap, fd uintptr, p []byte) (int, syscall.Errno) {
	for {
		m, _, e := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if e != syscall.EINTR {
			return int(m), e
		}
	}
}
