//go:build linux

package gslb

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// On Linux, UDP queries are read and answered in batches with recvmmsg and
// sendmmsg, as knot does: one system call moves up to batchSize packets,
// which is where a DNS server on loopback spends most of its time.

const (
	batchSize = 32
	// batchIn is the receive buffer of one query; longer UDP packets are
	// cut (and then answered FORMERR): no valid query is that long.
	batchIn = 4096
	// batchOut holds one UDP answer: at most ednsSize bytes (FORMERR and
	// NOTIMP answers carry only the question, below 300 bytes).
	batchOut = 2048
)

// mmsghdr is struct mmsghdr: a msghdr and the length received.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

type batch struct {
	in, out       [batchSize]mmsghdr
	iovIn, iovOut [batchSize]unix.Iovec
	names         [batchSize][unix.SizeofSockaddrInet6]byte
	bufIn         [batchSize][batchIn]byte
	bufOut        [batchSize][batchOut]byte

	// results of the system calls, set by recvFn and sendFn (bound once,
	// so that RawConn.Read and Write do not allocate a closure per call)
	n, off, m int
	errno     syscall.Errno
	recvFn    func(fd uintptr) bool
	sendFn    func(fd uintptr) bool
}

func newBatch() *batch {
	b := &batch{}
	for i := range batchSize {
		b.iovIn[i].Base = &b.bufIn[i][0]
		b.iovIn[i].SetLen(batchIn)
		b.in[i].hdr.Iov = &b.iovIn[i]
		b.in[i].hdr.SetIovlen(1)
		b.in[i].hdr.Name = &b.names[i][0]
		b.out[i].hdr.Iov = &b.iovOut[i]
		b.out[i].hdr.SetIovlen(1)
		b.iovOut[i].Base = &b.bufOut[i][0]
	}
	b.recvFn = b.recv
	b.sendFn = b.send
	return b
}

func (b *batch) recv(fd uintptr) bool {
	for i := range batchSize {
		b.in[i].hdr.Namelen = unix.SizeofSockaddrInet6
		b.in[i].hdr.Flags = 0
	}
	r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.in[0])), batchSize, unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false // wait until readable
	}
	b.n, b.errno = int(r), e
	return true
}

func (b *batch) send(fd uintptr) bool {
	r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.out[b.off])), uintptr(b.m-b.off), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false // wait until writable
	}
	switch {
	case e != 0:
		b.off++ // this answer cannot be sent (e.g. EPERM): skip it
	default:
		b.off += int(r)
	}
	return true
}

// sockaddrAddr reads the address of a struct sockaddr_in or sockaddr_in6.
func sockaddrAddr(sa []byte) netip.Addr {
	switch *(*uint16)(unsafe.Pointer(&sa[0])) {
	case unix.AF_INET:
		return netip.AddrFrom4([4]byte(sa[4:8]))
	case unix.AF_INET6:
		return netip.AddrFrom16([16]byte(sa[8:24])).Unmap()
	}
	return netip.Addr{}
}

// serveUDP answers queries read from c in batches until c is closed.
// Several goroutines may serve the same socket, each with its own worker.
func (s *Server) serveUDP(c *net.UDPConn, w *worker) {
	rc, err := c.SyscallConn()
	if err != nil {
		s.serveUDPSimple(c, w)
		return
	}
	b := newBatch()
	for {
		if err := rc.Read(b.recvFn); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if b.errno != 0 {
			if b.errno == unix.ENOSYS {
				s.serveUDPSimple(c, w)
				return
			}
			continue // e.g. ECONNREFUSED from an earlier ICMP: next batch
		}
		b.m, b.off = 0, 0
		for i := range b.n {
			h := &b.in[i]
			src := sockaddrAddr(b.names[i][:])
			out := s.handle(w, b.bufIn[i][:min(int(h.len), batchIn)], src, false)
			if out == nil || len(out) > batchOut {
				continue
			}
			o := &b.out[b.m]
			copy(b.bufOut[b.m][:], out)
			b.iovOut[b.m].SetLen(len(out))
			o.hdr.Name = &b.names[i][0]
			o.hdr.Namelen = h.hdr.Namelen
			b.m++
		}
		for b.off < b.m {
			if err := rc.Write(b.sendFn); err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				break
			}
		}
	}
}
