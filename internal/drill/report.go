package drill

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strings"
)

//go:embed report.html.tmpl
var reportSource string

var reportTemplate = template.Must(template.New("report").Parse(reportSource))

// row is one line of a table of the report.
type row struct {
	Name, Value, Note string
	Class             string
}

type reportData struct {
	S        Summary
	Verdict  string
	Headline string
	Chart    chart
	Numbers  []row
	Checks   []row
	Phases   [][]string
	Regions  [][]string
	Streams  [][]string
	Steps    [][]string
	Events   [][]string
}

// WriteReport writes report.html: one self-contained page (inline CSS and
// SVG, no script needed, nothing fetched) with the verdict, the numbers,
// the floor and the objectives, and a timeline of the run's success ratio,
// served traffic and latency per region with its events marked. The page
// carries <meta name="geostamp-verdict">, an <svg id="timeline"> and the
// summary as JSON in <script type="application/json" id="summary-json">.
func WriteReport(w io.Writer, h *History, s Summary) error {
	tl := buildTimeline(h, s)
	d := reportData{
		S:       s,
		Verdict: strings.ToUpper(s.Verdict),
		Chart:   buildChart(h, s, tl),
	}
	d.Headline = headline(s)
	d.Numbers = numbers(s)
	for _, c := range s.Checks {
		class := "pass"
		if !c.Pass {
			class = "fail"
		}
		r := row{Name: c.Name, Value: optNum(c.Measured, c.Unit), Note: "objective " + optNum(c.Objective, c.Unit) + detail(c.Detail), Class: class}
		if c.Name == "valid" {
			r.Value, r.Note = map[bool]string{true: "yes", false: "no"}[c.Pass], c.Detail
		}
		d.Checks = append(d.Checks, r)
	}
	for _, p := range s.Phases {
		d.Phases = append(d.Phases, []string{p.Name, num(p.StartAtSeconds) + " – " + num(p.EndAtSeconds) + " s",
			fmt.Sprint(p.Ops), fmt.Sprint(p.Failed), lat(p.Latency, false), lat(p.Latency, true), lat(p.ServiceTime, false), lat(p.ServiceTime, true)})
	}
	for _, r := range s.Regions {
		name := r.Region
		if name == "" {
			name = noRegion
		}
		d.Regions = append(d.Regions, []string{name, fmt.Sprint(r.Ops), fmt.Sprint(r.OK), fmt.Sprint(r.Fail), fmt.Sprint(r.Unknown),
			fmt.Sprint(r.Reads), fmt.Sprint(r.Writes), fmt.Sprint(r.StaleReads)})
	}
	for _, st := range s.Streams {
		d.Streams = append(d.Streams, []string{orDash(st.Path), orDash(st.Conn), fmt.Sprint(st.Ops), fmt.Sprint(st.Failed),
			rtoText(st.RTOSeconds, st.RTOResolutionSeconds)})
	}
	for _, st := range s.FailoverSteps {
		d.Steps = append(d.Steps, []string{st.Step, num(st.AtSeconds) + " s", optNum(st.AfterFaultSeconds, "s"), orDash(st.Region), orDash(st.Service)})
	}
	for _, e := range h.Events {
		what := e.Name
		switch e.Kind {
		case EventFailoverStep:
			what = e.Step
		case EventPhase:
			what = e.Phase
		}
		d.Events = append(d.Events, []string{num(sec(e.T)) + " s", e.Kind, orDash(what), orDash(e.Region), e.Detail})
	}
	if err := reportTemplate.Execute(w, d); err != nil {
		return fmt.Errorf("drill: report: %w", err)
	}
	return nil
}

func headline(s Summary) string {
	parts := []string{"RTO " + rtoText(s.RTOSeconds, s.RTOResolutionSeconds) + " (objective " + num(s.Objectives.RTOSeconds) + " s)"}
	parts = append(parts, fmt.Sprintf("%d failed requests", s.FailedRequests))
	parts = append(parts, fmt.Sprintf("%d lost writes, RPO %s s (objective %s s)", s.LostWrites, num(s.RPOSeconds), num(s.Objectives.RPOSeconds)))
	if s.SplitBrainWrites > 0 {
		parts = append(parts, fmt.Sprintf("%d split-brain writes", s.SplitBrainWrites))
	}
	return strings.Join(parts, " · ")
}

func numbers(s Summary) []row {
	valid := "yes"
	if !s.Valid {
		valid = "no: the measurement cannot be trusted"
	}
	floor := "unknown (no floor inputs)"
	if s.FloorRTOSeconds != nil {
		floor = num(*s.FloorRTOSeconds) + " s"
	}
	outage := outageText(s.Outage)
	rows := []row{
		{Name: "scenario", Value: s.Scenario, Note: s.Topology},
		{Name: "valid", Value: valid},
		{Name: "fault at", Value: optNum(s.FaultAtSeconds, "s")},
		{Name: "RTO", Value: rtoText(s.RTOSeconds, s.RTOResolutionSeconds), Note: fmt.Sprintf(
			"first instant after the fault from which every %s s window of the next %s s holds ≥ %s%% successful operations",
			num(s.Method.WindowSeconds), num(s.Method.HoldSeconds), num(100*s.Method.RecoveryRatio))},
		{Name: "theoretical floor", Value: floor, Note: "from the configuration: the longer of routing (detection + TTL) and data (promotion)"},
		{Name: "RTO objective", Value: num(s.Objectives.RTOSeconds) + " s"},
		{Name: "failback RTO", Value: optNum(s.FailbackRTOSeconds, "s"), Note: "from " + optNum(s.FailbackAtSeconds, "s")},
		{Name: "failed requests", Value: fmt.Sprint(s.FailedRequests), Note: fmt.Sprintf("%d after the fault, %d with unknown outcome", s.FailedAfterFault, s.UnknownRequests)},
		{Name: "outage window", Value: outage, Note: "first to last failed operation after the fault, by intended instant"},
		{Name: "failback outage", Value: outageText(s.FailbackOutage)},
		{Name: "availability", Value: num(s.AvailabilityPercent) + " %", Note: "outside the recovery intervals: " + optNum(s.SteadyAvailabilityPercent, "%") +
			"; objective " + num(s.Objectives.AvailabilityPercent) + " %"},
		{Name: "acknowledged writes", Value: fmt.Sprint(s.AckedWrites), Note: fmt.Sprintf("%d never read back", s.UnverifiedWrites)},
		{Name: "lost writes", Value: fmt.Sprint(s.LostWrites), Note: "acknowledged, missing after convergence"},
		{Name: "RPO", Value: num(s.RPOSeconds) + " s", Note: "objective " + num(s.Objectives.RPOSeconds) + " s; last lost minus last surviving acknowledgement"},
		{Name: "split-brain writes", Value: fmt.Sprint(s.SplitBrainWrites), Note: "acknowledged by a fenced or demoted primary, then lost"},
		{Name: "replication position gap", Value: optInt(s.PositionGap), Note: "at promotion, from the old primary's last position report: cross-check of lost writes"},
		{Name: "discarded on rejoin", Value: optInt(s.DiscardedWrites), Note: "what old primaries dropped when they rejoined: the exact loss by positions, acknowledged or not"},
		{Name: "stale reads", Value: fmt.Sprint(s.StaleReads)},
		{Name: "divergent writes", Value: fmt.Sprint(s.DivergentWrites), Note: "survived but missing in another region"},
		{Name: "unknown-outcome writes", Value: fmt.Sprintf("%d applied, %d absent", s.UnknownWritesApplied, s.UnknownWritesAbsent), Note: "not loss"},
		{Name: "generator", Value: fmt.Sprintf("%d late, %d missing, %d off schedule", s.Generator.LateOps, s.Generator.Missing, s.Generator.OffSchedule),
			Note: "max send lag " + num(s.Generator.MaxSendLagMs) + " ms"},
	}
	return rows
}

func outageText(o *Outage) string {
	if o == nil {
		return "none"
	}
	return fmt.Sprintf("%s s → %s s (%s s, %d failed)", num(o.StartAtSeconds), num(o.EndAtSeconds), num(o.DurationSeconds), o.Failed)
}

func rtoText(v *float64, res float64) string {
	if v == nil {
		return "not recovered"
	}
	return num(*v) + " s ± " + num(res) + " s"
}

func optNum(v *float64, unit string) string {
	if v == nil {
		return "—"
	}
	if unit == "" {
		return num(*v)
	}
	return num(*v) + " " + unit
}

func optInt(v *int64) string {
	if v == nil {
		return "—"
	}
	return fmt.Sprint(*v)
}

func lat(l *Latency, p99 bool) string {
	if l == nil {
		return "—"
	}
	if p99 {
		return num(l.P99Ms)
	}
	return num(l.P50Ms)
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func detail(s string) string {
	if s == "" {
		return ""
	}
	return "; " + s
}
