//go:build !linux

package gslb

import "net"

// serveUDP answers queries read from c until c is closed.
func (s *Server) serveUDP(c *net.UDPConn, w *worker) { s.serveUDPSimple(c, w) }
