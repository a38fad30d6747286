package main

import (
	"context"
	"fmt"
	"io"

	"github.com/geostamp/geostamp/internal/auth"
	"github.com/geostamp/geostamp/internal/frontdoor"
	"github.com/geostamp/geostamp/internal/telemetry"
	"github.com/geostamp/geostamp/internal/topology"
)

// cmdFrontdoor runs one front door POP on its own, as in production: the
// regions are reached at their topology origin URLs, the listeners and the
// admin API come from the topology unless a flag overrides them.
func cmdFrontdoor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("frontdoor", "frontdoor -f FILE [--token-file F] [--pop NAME] [--listen ADDR] [--listen-tls ADDR] [--admin ADDR]", stderr)
	file := fs.String("f", "", "topology `file` (default: the embedded default topology, whose regions have no origin URLs)")
	tokenFile := fs.String("token-file", "", "`file` holding the admin API bearer token (default: frontdoor.admin.tokenFile)")
	pop := fs.String("pop", "", "`name` of this POP (default: the first of frontdoor.pops)")
	listen := fs.String("listen", "", "plain HTTP `address` (default: frontdoor.listen; \"off\" disables it)")
	listenTLS := fs.String("listen-tls", "", "HTTPS `address` (default: frontdoor.listenTLS when frontdoor.tls has a certificate; \"off\" disables it)")
	admin := fs.String("admin", "", "admin API `address` (default: frontdoor.admin.listen; \"off\" disables it)")
	accessLog := fs.Bool("access-log", false, "write one JSON line per request to standard output")
	logLevel := fs.String("log-level", "info", "log `level` (debug, info, warn, error); logs go to standard error")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	topo, err := topology.Load(*file)
	if err != nil {
		printProblems(stderr, err)
		return exitError{1}
	}
	logger, err := telemetry.NewLogger(stderr, telemetry.LogConfig{Level: *logLevel})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	stopTracing, tracing, err := startTracing(ctx, telemetry.TraceConfig{Process: "frontdoor", POP: *pop}, logger)
	if err != nil {
		return err
	}
	defer stopTracing()
	fd := topo.FrontDoor
	pick := func(flag, def string) string {
		switch flag {
		case "off":
			return ""
		case "":
			return def
		}
		return flag
	}
	tlsDefault := ""
	if fd.TLS.CertFile != "" {
		tlsDefault = fd.ListenTLS
	}
	cfg := frontdoor.Config{
		Topology:    topo,
		POP:         *pop,
		Listen:      pick(*listen, fd.Listen),
		ListenTLS:   pick(*listenTLS, tlsDefault),
		AdminListen: pick(*admin, fd.Admin.Listen),
		Logger:      logger,
	}
	if *accessLog {
		cfg.AccessLog = stdout
	}
	if tracing {
		cfg.Tracer = telemetry.Tracer("frontdoor")
	}
	if cfg.AdminListen != "" {
		tf := *tokenFile
		if tf == "" {
			tf = fd.Admin.TokenFile
		}
		if tf == "" {
			return fmt.Errorf("%w: the admin API needs a token: pass --token-file or set frontdoor.admin.tokenFile (or --admin off)", errUsage)
		}
		tok, err := auth.ReadTokenFile(tf)
		if err != nil {
			return fmt.Errorf("frontdoor: admin API: %w", err)
		}
		cfg.AdminToken = tok
	}
	f, err := frontdoor.New(cfg)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- f.Run(ctx) }()
	select {
	case err := <-errc:
		return err
	case <-f.Ready():
	}
	if a := f.Addr(); a != "" {
		fmt.Fprintf(stderr, "front door: http://%s\n", a)
	}
	if a := f.TLSAddr(); a != "" {
		fmt.Fprintf(stderr, "front door: https://%s\n", a)
	}
	if a := f.AdminAddr(); a != "" {
		fmt.Fprintf(stderr, "admin API: http://%s (bearer token)\n", a)
	}
	return <-errc
}
