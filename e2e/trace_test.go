package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/geostamp/geostamp/internal/lab"
	"github.com/geostamp/geostamp/internal/tracestore"
)

// TestTraces: one lab, three traces in its store.
//   - A write with a traceparent through the front door: the answer names
//     the incoming trace, and the store holds spans of the front door, the
//     stamp ingress, the workload and the data engine in it, each with its
//     region, the stamp's under the front door's try.
//   - A read retried from westeurope (a 503 brownout) onto northeurope: two
//     attempt spans with their regions, attempt numbers and retry reason.
//   - A planned failover: one trace with the fence in the old primary, the
//     catch-up and promotion in the target, the repoint or rejoin of the
//     others.
//
// The lab also runs Prometheus (up --prometheus): after the traces,
// promtool checks every process's /metrics, and checkPrometheus checks
// what Prometheus scraped, failover metrics included.
func TestTraces(t *testing.T) {
	l := startLab(t, promArgs(t)...)
	const we, ne = "westeurope", "northeurope"
	pop := l.eps.POPs[0].HTTP
	client := &http.Client{Timeout: 10 * time.Second}
	send := func(method, url, body, traceID string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	// spansOf waits until the trace holds spans that satisfy ok.
	spansOf := func(id string, ok func([]tracestore.Span) error) []tracestore.Span {
		t.Helper()
		var tr lab.TraceAnswer
		eventually(t, 15*time.Second, "trace "+id, func() error {
			tr = lab.TraceAnswer{} // decoding into the last answer would merge its maps
			if err := l.client.Do(t.Context(), http.MethodGet, "/v1/traces/"+id, nil, &tr); err != nil {
				return err
			}
			return ok(tr.Spans)
		})
		if t.Failed() {
			return nil
		}
		var b strings.Builder
		tracestore.WriteTree(&b, tr.Spans)
		t.Logf("%s", b.String())
		return tr.Spans
	}
	find := func(spans []tracestore.Span, component, namePrefix, region string) *tracestore.Span {
		for i, s := range spans {
			if s.Component == component && strings.HasPrefix(s.Name, namePrefix) && (region == "" || s.Region == region) {
				return &spans[i]
			}
		}
		return nil
	}

	const writeTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	resp := send(http.MethodPost, pop+"/orders", `{"item":"book","qty":1}`, writeTrace)
	var created struct{ ID string }
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK || created.ID == "" {
		t.Fatalf("POST /orders: %d", resp.StatusCode)
	}
	if got := resp.Header.Get("X-Geostamp-Trace-Id"); got != writeTrace {
		t.Errorf("X-Geostamp-Trace-Id %q, want the incoming trace %s", got, writeTrace)
	}
	want := []struct{ component, name string }{
		{"frontdoor", "POST"}, {"frontdoor", "attempt " + we}, {"stamp", "ingress POST /orders"},
		{"workload", "orders.create"}, {"jetstream", "jetstream put"},
	}
	spans := spansOf(writeTrace, func(spans []tracestore.Span) error {
		for _, w := range want {
			if find(spans, w.component, w.name, we) == nil {
				return fmt.Errorf("no %s span %q in %s among %d spans", w.component, w.name, we, len(spans))
			}
		}
		return nil
	})
	if spans != nil {
		server := find(spans, "frontdoor", "POST", we)
		try := find(spans, "frontdoor", "attempt "+we, we)
		ingress := find(spans, "stamp", "ingress", we)
		op := find(spans, "workload", "orders.create", we)
		put := find(spans, "jetstream", "jetstream put", we)
		switch {
		case server.ParentID != "00f067aa0ba902b7" || server.POP == "":
			t.Errorf("front door span: parent %s pop %q, want the client's span and a POP", server.ParentID, server.POP)
		case try.ParentID != server.SpanID || ingress.ParentID != try.SpanID || op.ParentID != ingress.SpanID || put.ParentID != op.SpanID:
			t.Errorf("spans not nested front door > try > ingress > workload > data")
		case op.Attributes["geostamp.service"] != "orders" || put.Attributes["geostamp.service"] != "orders":
			t.Errorf("workload and data spans lack service orders")
		case server.Service != "geostamp-lab" || ingress.Service != "geostamp-region":
			t.Errorf("services %s / %s: want the front door in the lab process, the stamp in a region process", server.Service, ingress.Service)
		}
	}

	// A brownout's first failed request ejects westeurope; the read right
	// after it is retried on northeurope within the request.
	l.waitEligible(t) // northeurope must be in the front door's order to be retried onto
	l.mustInject(t, "region", "brownout", we, "--share", "1", "--status", "503")
	const retryTrace = "5bf92f3577b34da6a3ce929d0e0e4737"
	resp = send(http.MethodGet, pop+"/orders/"+created.ID, "", retryTrace)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Geostamp-Region") != ne {
		t.Errorf("GET during the brownout: %d from %q, want 200 from %s", resp.StatusCode, resp.Header.Get("X-Geostamp-Region"), ne)
	}
	spans = spansOf(retryTrace, func(spans []tracestore.Span) error {
		first, second := find(spans, "frontdoor", "attempt "+we, we), find(spans, "frontdoor", "attempt "+ne, ne)
		if first == nil || second == nil {
			return fmt.Errorf("want attempt spans in %s and %s, have %d spans", we, ne, len(spans))
		}
		if find(spans, "jetstream", "jetstream get", ne) == nil {
			return fmt.Errorf("no data read in %s yet", ne)
		}
		// Each region process exports on its own: wait for both.
		if find(spans, "stamp", "ingress", we) == nil || find(spans, "stamp", "ingress", ne) == nil {
			return fmt.Errorf("want an ingress span in both regions (westeurope's answered the 503)")
		}
		return nil
	})
	if spans != nil {
		first, second := find(spans, "frontdoor", "attempt "+we, we), find(spans, "frontdoor", "attempt "+ne, ne)
		if first.Attributes["geostamp.attempt"] != "1" || first.Attributes["http.response.status_code"] != "503" ||
			second.Attributes["geostamp.attempt"] != "2" || second.Attributes["geostamp.retry_reason"] != "status_503" {
			t.Errorf("attempts: %v / %v; want 1 (503) in %s, then 2 (retry after status_503) in %s", first.Attributes, second.Attributes, we, ne)
		}
	}
	l.mustInject(t, "region", "brownout", we, "--share", "0")

	out, errOut, code := l.cli("failover", "orders", "--to", ne, "--planned", "--json")
	if code != 0 {
		t.Fatalf("failover: exit %d: %s%s", code, out, errOut)
	}
	res := decode[lab.FailoverResult](t, []byte(out))
	if len(res.TraceID) != 32 {
		t.Fatalf("failover result without a trace id: %s", out)
	}
	spansOf(res.TraceID, func(spans []tracestore.Span) error {
		for _, w := range []struct{ name, region string }{
			{"failover orders", ""}, {"failover fence", res.From}, {"failover catch-up", ne}, {"failover promote", ne},
		} {
			if find(spans, "failover", w.name, w.region) == nil {
				return fmt.Errorf("no span %q in %q among %d", w.name, w.region, len(spans))
			}
		}
		if find(spans, "failover", "failover rejoin", res.From) == nil && find(spans, "failover", "failover repoint", res.From) == nil {
			return fmt.Errorf("no repoint or rejoin of %s", res.From)
		}
		return nil
	})
	// The CLI prints the same trace as a tree.
	out, errOut, code = l.cli("trace", res.TraceID)
	if code != 0 || !strings.Contains(out, "failover promote") || !strings.Contains(out, ne) {
		t.Errorf("geostamp trace: exit %d:\n%s%s", code, out, errOut)
	}
	t.Run("promtool check metrics", func(t *testing.T) { checkMetricsLint(t, l) })
	t.Run("prometheus", func(t *testing.T) { checkPrometheus(t, l) })
}
