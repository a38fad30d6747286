package drill

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// dnsCache is one simulated client's stub resolver: it asks the GSLB for
// the A record of name and keeps the answer for its TTL, never longer.
//
// A population of clients resolves at random moments, so that after the
// answer changes the last client moves one TTL later. To model that with a
// few clients, client index of `of` ages its first answer by index/of of
// the TTL, and from then on asks again the moment its answer expires (a
// refresher goroutine), so the clients' answers keep expiring spread
// evenly over one TTL and the last client moves between TTL − TTL/of and
// TTL after the answer changed. An operation that finds no valid answer
// (the refresh failed) resolves on its own.
type dnsCache struct {
	server, name string
	index, of    int

	mu      sync.Mutex
	addr    string
	expires int64 // run clock, ns
	primed  bool
}

// get returns the cached address, resolving when there is none valid.
func (c *dnsCache) get(ctx context.Context, clock *runClock) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.addr != "" && clock.now() < c.expires {
		return c.addr, nil
	}
	return c.refresh(ctx, clock)
}

// refresh asks the server; c.mu is held.
func (c *dnsCache) refresh(ctx context.Context, clock *runClock) (string, error) {
	addr, ttl, err := lookupA(ctx, c.server, c.name)
	if err != nil {
		c.addr = ""
		return "", err
	}
	life := int64(ttl)
	if !c.primed {
		c.primed = true
		life = life * int64(c.index+1) / int64(c.of)
	}
	c.addr, c.expires = addr, clock.now()+life
	return addr, nil
}

// run refreshes the answer whenever it expires, until ctx ends.
func (c *dnsCache) run(ctx context.Context, clock *runClock) {
	for {
		c.mu.Lock()
		if ctx.Err() != nil {
			c.mu.Unlock()
			return
		}
		if c.addr == "" || clock.now() >= c.expires {
			qctx, cancel := context.WithTimeout(ctx, time.Second)
			c.refresh(qctx, clock)
			cancel()
		}
		next := c.expires
		if c.addr == "" {
			next = clock.now() + int64(100*time.Millisecond) // retry a failed query
		}
		// With a TTL of 0 every operation resolves on its own; do not spin.
		next = max(next, clock.now()+int64(50*time.Millisecond))
		c.mu.Unlock()
		if clock.sleepUntil(ctx, next) != nil {
			return
		}
	}
}

// lookupA asks server for the A records of name over UDP (TCP when the
// answer is truncated) and returns the first address and the answer's TTL.
func lookupA(ctx context.Context, server, name string) (string, time.Duration, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	m.RecursionDesired = false
	cl := &dns.Client{Timeout: time.Second}
	if d, ok := ctx.Deadline(); ok {
		cl.Timeout = min(cl.Timeout, time.Until(d))
	}
	r, _, err := cl.ExchangeContext(ctx, m, server)
	if err == nil && r.Truncated {
		cl.Net = "tcp"
		r, _, err = cl.ExchangeContext(ctx, m, server)
	}
	if err != nil {
		return "", 0, err
	}
	if r.Rcode != dns.RcodeSuccess {
		return "", 0, fmt.Errorf("%s for %s", dns.RcodeToString[r.Rcode], name)
	}
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			return a.A.String(), time.Duration(a.Hdr.Ttl) * time.Second, nil
		}
	}
	return "", 0, errors.New("no A record for " + name)
}
