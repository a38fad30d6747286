package main

import (
	"context"
	"fmt"
	"io"

	"github.com/geostamp/geostamp/internal/auth"
	"github.com/geostamp/geostamp/internal/gslb"
	"github.com/geostamp/geostamp/internal/telemetry"
	"github.com/geostamp/geostamp/internal/topology"
)

// cmdGSLB runs the GSLB DNS server on its own (production): it probes the
// regions of the topology and answers the zone until ctx ends.
func cmdGSLB(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const synopsis = "gslb -f FILE [--token-file F] [--listen ADDR] [--admin ADDR]\n\n" +
		"  Serve the topology's zone (gslb section) as an authoritative, health-checked DNS\n" +
		"  server. Regions are probed at their origin + gslb.probe.path (or at\n" +
		"  http://<address>[:<lab.ingressPort>]<path> without an origin). The admin API\n" +
		"  (explain, health, metrics) needs a bearer token: --token-file, else\n" +
		"  gslb.admin.tokenFile; --admin off disables it."
	fs := newFlags("gslb", synopsis, stderr)
	file := fs.String("f", "", "topology `file` (required)")
	tokenFile := fs.String("token-file", "", "`file` holding the admin API bearer token (default: gslb.admin.tokenFile)")
	listen := fs.String("listen", "", "DNS `address` host:port, UDP and TCP (default: gslb.listen)")
	admin := fs.String("admin", "", "admin API `address`, or off (default: gslb.admin.listen)")
	logLevel := fs.String("log-level", "info", "log level (debug, info, warn, error)")
	logFormat := fs.String("log-format", "json", "log format (json, text)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		fs.Usage()
		return fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0])
	}
	if *file == "" {
		fs.Usage()
		return fmt.Errorf("%w: gslb needs -f FILE (a topology with a gslb section)", errUsage)
	}
	topo, err := topology.Load(*file)
	if err != nil {
		printProblems(stderr, err)
		return exitError{1}
	}
	logger, err := telemetry.NewLogger(stderr, telemetry.LogConfig{Format: *logFormat, Level: *logLevel})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	stopTracing, _, err := startTracing(ctx, telemetry.TraceConfig{Process: "gslb"}, logger)
	if err != nil {
		return err
	}
	defer stopTracing()
	var token string
	if *admin != gslb.AdminOff {
		tf := *tokenFile
		if tf == "" {
			tf = topo.GSLB.Admin.TokenFile
		}
		if tf == "" {
			return fmt.Errorf("%w: the admin API needs a bearer token: --token-file F (or gslb.admin.tokenFile), or --admin off", errUsage)
		}
		if token, err = auth.ReadTokenFile(tf); err != nil {
			return fmt.Errorf("gslb: admin API: %w", err)
		}
	}
	s, err := gslb.New(gslb.Config{
		Topology:    topo,
		Listen:      *listen,
		AdminListen: *admin,
		AdminToken:  token,
		Logger:      logger,
	})
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	select {
	case err := <-errc:
		return err
	case <-s.Ready():
	}
	fmt.Fprintf(stdout, "geostamp gslb: serving %s (%s routing of %s) on %s udp+tcp\n",
		s.Zone(), topo.GSLB.Routing, topo.GSLB.Host+"."+s.Zone(), s.Addr())
	if a := s.AdminAddr(); a != "" {
		fmt.Fprintf(stdout, "admin API    http://%s (/admin/explain?client=IP, /admin/health, /metrics)\n", a)
	}
	return <-errc
}
