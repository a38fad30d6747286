package drill

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// goldenHistory is a data-primary-loss drill through the front door at
// 200/s for 25 s: westeurope (primary of orders) dies at 5 s, 7 writes had
// not replicated, northeurope serves from 7.3 s; westeurope comes back at
// 14 s, its failback costs 0.2 s of errors, and it rejoins at 14.5 s.
func goldenHistory() *History {
	lost := map[int64]bool{972: true, 980: true, 981: true, 982: true, 990: true, 991: true, 992: true}
	h := openLoop(200, 25, func(o *Op) {
		switch {
		case failWhere(o, 5, 7.3), failWhere(o, 14, 14.2):
		case o.Intended >= at(7.3) && o.Intended < at(14):
			o.Region = ne
		case o.Intended >= at(14) && o.Seq%2 == 1:
			o.Region = ne
		}
		if o.Seq%7 == 0 {
			o.Conn = ConnFresh
		}
		if o.Op == OpRead && o.Outcome == OK {
			o.Found = ptr(true)
			// Clients that wrote k980 just before the fault look for it in
			// northeurope: stale reads.
			if o.Intended >= at(7.3) && o.Intended < at(7.5) {
				o.Key, o.Found = "k980", ptr(false)
			}
		}
	})
	h.Run.Scenario = "data-primary-loss"
	h.Run.ReadShare = 0.7
	h.Run.TimeoutSeconds = 2
	h.Run.Floor = append(h.Run.Floor, FloorTerm{Name: "promotion", Seconds: 0, Formula: "orders: manual failover (operator's delay not included)"})
	h.Events = []Event{
		event(0, EventPhase, func(e *Event) { e.Phase = PhaseSteady }),
		event(5, EventFault, func(e *Event) { e.Name, e.Region, e.Detail = "kill-region", we, "SIGKILL" }),
		step(5.8, StepDetect, we),
		step(6.5, StepDecide, ne),
		step(6.6, StepFence, we),
		{T: at(6.9), Kind: EventFailoverStep, Step: StepPromote, Region: ne, Service: "orders", Epoch: 2, Gap: ptr(int64(7))},
		step(7.0, StepRepoint, ne),
		event(14, EventHeal, func(e *Event) { e.Name, e.Region = "restart-region", we }),
		event(14, EventPhase, func(e *Event) { e.Phase = PhaseFailback }),
		step(14.5, StepRejoin, we),
	}
	readBackAll(h, []string{we, ne}, func(region string, o *Op) bool { return lost[o.Seq] })
	return h
}

func TestSummaryGolden(t *testing.T) {
	s := Analyze(goldenHistory(), Options{})
	got, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "summary.golden.json", append(got, '\n'))

	// The golden run, in words: recovered in 2.3 s, 7 writes lost over
	// 0.105 s, 28 stale reads (the reads in [7.3, 7.5) s) of a lost key.
	eqPtr(t, "rto_seconds", s.RTOSeconds, fptr(2.3))
	eqPtr(t, "failback_rto_seconds", s.FailbackRTOSeconds, fptr(0.2))
	if s.LostWrites != 7 || s.RPOSeconds != 0.105 || s.StaleReads != 28 || s.Verdict != VerdictPass {
		t.Errorf("lost %d rpo %v stale %d verdict %s", s.LostWrites, s.RPOSeconds, s.StaleReads, s.Verdict)
	}
	// Every field issue 6 requires is present.
	var m map[string]any
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"scenario", "rto_seconds", "rto_resolution_seconds", "failed_requests", "lost_writes", "rpo_seconds",
		"split_brain_writes", "stale_reads", "floor_rto_seconds", "objectives", "verdict", "valid"} {
		if _, ok := m[k]; !ok {
			t.Errorf("summary.json has no %q", k)
		}
	}
}

func TestReportStructure(t *testing.T) {
	h := goldenHistory()
	s := Analyze(h, Options{})
	var buf bytes.Buffer
	if err := WriteReport(&buf, h, s); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	out, err := outline(page)
	if err != nil {
		t.Fatalf("report.html does not parse: %v", err)
	}
	golden(t, "report.outline.golden", []byte(out))
	checkReport(t, page, s)
}

// checkReport checks what a browser test relies on, and that the page is
// self-contained.
func checkReport(t *testing.T, page string, s Summary) {
	t.Helper()
	out, err := outline(page)
	if err != nil {
		t.Fatalf("report.html does not parse: %v", err)
	}
	for _, want := range []string{
		"meta geostamp-verdict=" + s.Verdict,
		"div#verdict " + strings.ToUpper(s.Verdict),
		"svg#timeline",
		"table#numbers",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("outline lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "timeline path.series") {
		t.Errorf("the timeline has no series:\n%s", out)
	}
	for _, bad := range []string{"<link", " src=", "@import", "url(", "https://", "<script>", `<script src`} {
		if strings.Contains(page, bad) {
			t.Errorf("report.html contains %q: not self-contained", bad)
		}
	}
	if n := strings.Count(page, "http://"); n != strings.Count(page, `xmlns="http://www.w3.org/2000/svg"`) {
		t.Errorf("report.html refers to http:// outside the SVG namespace")
	}
	// The embedded summary is the summary.
	const open = `<script type="application/json" id="summary-json">`
	i := strings.Index(page, open)
	j := strings.Index(page[i+1:], "</script>")
	if i < 0 || j < 0 {
		t.Fatal("no summary-json script")
	}
	var embedded Summary
	if err := json.Unmarshal([]byte(page[i+len(open):i+1+j]), &embedded); err != nil {
		t.Fatalf("summary-json: %v", err)
	}
	a, _ := json.Marshal(embedded)
	b, _ := json.Marshal(s)
	if !bytes.Equal(a, b) {
		t.Error("the embedded summary differs from the summary")
	}
}

func TestReportEdgeCases(t *testing.T) {
	never := openLoop(200, 10, func(o *Op) { failWhere(o, 5, 1e9) })
	never.Events = []Event{event(5, EventFault, nil)}
	cases := map[string]*History{
		"header only":     {Run: testRun(200)},
		"never recovered": never,
		"no fault":        openLoop(50, 3, nil),
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			s := Analyze(h, Options{})
			var buf bytes.Buffer
			if err := WriteReport(&buf, h, s); err != nil {
				t.Fatal(err)
			}
			checkReportMinimal(t, buf.String(), s)
			if name == "never recovered" && !strings.Contains(buf.String(), "not recovered") {
				t.Error("the report does not say the run never recovered")
			}
		})
	}
}

func checkReportMinimal(t *testing.T, page string, s Summary) {
	t.Helper()
	out, err := outline(page)
	if err != nil {
		t.Fatalf("report.html does not parse: %v", err)
	}
	for _, want := range []string{"meta geostamp-verdict=" + s.Verdict, "svg#timeline", "div#verdict " + strings.ToUpper(s.Verdict)} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("outline lacks %q:\n%s", want, out)
		}
	}
}

type failAfter struct{ n int }

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, errors.New("broken pipe")
	}
	return len(p), nil
}

func TestReportWriteError(t *testing.T) {
	h := goldenHistory()
	err := WriteReport(&failAfter{n: 100}, h, Analyze(h, Options{}))
	if err == nil || !strings.Contains(err.Error(), "broken pipe") {
		t.Errorf("WriteReport = %v, want the write error", err)
	}
}

// outline summarizes the structure of a page: its verdict meta, the
// elements with an id, and inside the timeline the count of each element
// by class and the labels of its events.
func outline(page string) (string, error) {
	d := xml.NewDecoder(strings.NewReader(page))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	var lines []string
	counts := map[string]int{}
	var stack []string // ids of enclosing elements
	inTimeline := func() bool {
		for _, id := range stack {
			if id == "timeline" {
				return true
			}
		}
		return false
	}
	var textOf string // id whose text is captured
	var eventText bool
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			attr := map[string]string{}
			for _, a := range tok.Attr {
				attr[a.Name.Local] = a.Value
			}
			name := tok.Name.Local
			if name == "meta" && strings.HasPrefix(attr["name"], "geostamp-") {
				lines = append(lines, fmt.Sprintf("meta %s=%s", attr["name"], attr["content"]))
			}
			if inTimeline() {
				key := "timeline " + name
				if c := attr["class"]; c != "" {
					key += "." + c
				}
				counts[key]++
				eventText = name == "text" && strings.HasPrefix(attr["class"], "ev")
				if name == "path" && attr["d"] == "" {
					counts["timeline empty path"]++
				}
			}
			id := attr["id"]
			if id != "" {
				lines = append(lines, name+"#"+id)
				if id == "verdict" {
					textOf = id
				}
			}
			if name != "meta" {
				stack = append(stack, id)
			}
		case xml.EndElement:
			if tok.Name.Local != "meta" && len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			eventText = false
		case xml.CharData:
			s := strings.TrimSpace(string(tok))
			if textOf != "" && s != "" {
				lines[len(lines)-1] += " " + s
				textOf = ""
			}
			if eventText && s != "" {
				lines = append(lines, "  event label: "+s)
			}
		}
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		lines = append(lines, fmt.Sprintf("%s ×%d", k, counts[k]))
	}
	return strings.Join(lines, "\n") + "\n", nil
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (run go test -update after checking the change):\n%s", path, diff(string(want), string(got)))
	}
}

// diff shows the first differing lines.
func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, a, b)
		}
	}
	return ""
}
