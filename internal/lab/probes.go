package lab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"sort"
	"time"

	"github.com/geostamp/geostamp/internal/probe"
	"github.com/geostamp/geostamp/internal/stamp"
	"github.com/geostamp/geostamp/internal/telemetry"
)

// startProbes starts the synthetic user flows (internal/probe) through
// every POP's HTTPS listener and directly at every stamp's ingress, with
// the front door's id, their metrics on the lab's registry. It returns a
// function that waits until they stopped (after ctx ends); without
// Config.ProbeInterval it starts nothing.
func (l *Lab) startProbes(ctx context.Context, eps *Endpoints) (wait func(), err error) {
	if l.cfg.ProbeInterval <= 0 {
		return func() {}, nil
	}
	pem, err := os.ReadFile(eps.CAFile)
	if err != nil {
		return nil, fmt.Errorf("lab: probes: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("lab: probes: no certificate in %s", eps.CAFile)
	}
	// Each path keeps its connections, as a user's client would.
	viaPOP := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	direct := &http.Client{Transport: &http.Transport{}}
	var targets []probe.Target
	for _, p := range eps.POPs {
		targets = append(targets, probe.Target{Name: p.Name, Path: probe.PathFrontDoor, URL: p.HTTPS, Client: viaPOP})
	}
	names := make([]string, 0, len(eps.Regions))
	for n := range eps.Regions {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		targets = append(targets, probe.Target{Name: n, Path: probe.PathStamp, URL: eps.Regions[n].Ingress,
			Header: http.Header{stamp.HeaderFDID: {l.fdid}}, Client: direct})
	}
	log := telemetry.Component(l.cfg.Logger, "probe")
	p, err := probe.New(probe.Config{
		Targets:    targets,
		Interval:   l.cfg.ProbeInterval,
		Timeout:    max(l.cfg.ProbeInterval, 5*time.Second),
		Registerer: l.metrics.Registerer,
		Logger:     log,
	})
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	log.Info("probing", "targets", len(targets), "interval", l.cfg.ProbeInterval.String())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	return func() {
		<-done
		viaPOP.CloseIdleConnections()
		direct.CloseIdleConnections()
	}, nil
}
