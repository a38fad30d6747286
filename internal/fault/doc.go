// Package fault holds named faults against a lab and the drill scenarios
// built from them.
//
// An Action is one named fault or repair (kill-region, freeze-region,
// brownout, cut-link, isolate-region, latency, crash-data, failover,
// kill-pop, …; Actions lists them with their arguments). Apply runs one
// through a Controller, the one-method view of the lab's control API that
// *lab.Client satisfies, and returns the events to log: the action itself,
// then what the lab reported about it (a failover's steps). Actions are
// registered by name in one map literal; each is a few lines over the
// control API.
//
// A Scenario is a named, documented Plan: the load path (front door, DNS,
// front door with DNS fallback; pooled and fresh connections), a steady
// state, the fault at T, an observation window, an optional failback, and
// the cleanup that leaves the lab as it was. The built-in catalog:
//
//	region-outage      SIGKILL a region's process
//	region-hang        SIGSTOP it (connections accepted, nothing answers)
//	region-brownout    a share of its responses fail or slow down
//	partition          cut the WAN link between two regions
//	isolate-region     cut every WAN link of a region
//	data-primary-loss  only a data service's primary engine dies
//	planned-failover   fail a data service over on purpose
//	dns-failover       region-outage with clients on health-checked DNS
//	frontdoor-outage   a front door POP dies; clients fall back to DNS
//	manual             you inject the fault at T; the drill measures
//
// Custom scenarios are YAML files of timed steps (ParseCustom), checked by
// the walker topology files use (topology.Walker): every problem is named
// by its field path, all in one run.
//
// A Plan also carries what the floor of its RTO (the best case) depends on
// (how the fault is detected, whether a promotion is on the recovery path);
// package drill turns that into floor terms from the topology.
package fault
