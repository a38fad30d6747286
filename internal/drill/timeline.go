package drill

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Timeline geometry, in SVG user units.
const (
	chartWidth   = 960
	marginLeft   = 64
	marginRight  = 24
	maxLabelRows = 12
	labelRowH    = 13
	charWidth    = 6.2 // estimated width of a label character
	panelHeight  = 150
	panelGap     = 34
	axisHeight   = 28
	maxBuckets   = 900
	defaultWidth = int64(1e9) // one-second buckets
)

// palette colors regions in name order; "(none)" is grey.
var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"}

// noRegion labels operations that got no response.
const noRegion = "(none)"

// bucket aggregates the operations intended in one time slot.
type bucket struct {
	n, good int
	lat     []int64 // intended→done of completed operations
	regions map[string]*regionBucket
}

type regionBucket struct {
	n, ok int
	lat   []int64
}

// timeline is the per-bucket view of a run the report draws.
type timeline struct {
	t0, t1  int64 // ns
	width   int64 // bucket width, ns
	buckets []bucket
	regions []string // served at least one operation, sorted
}

// buildTimeline buckets operations by intended instant. Buckets are one
// second wide, or wider to keep at most maxBuckets.
func buildTimeline(h *History, s Summary) timeline {
	ops, _, _ := operations(h)
	tl := timeline{t0: h.Run.LoadStart, width: defaultWidth}
	tl.t1 = tl.t0 + int64(s.DurationSeconds*1e9)
	for _, e := range h.Events {
		tl.t1 = max(tl.t1, e.T)
	}
	if len(ops) > 0 {
		tl.t1 = max(tl.t1, ops[len(ops)-1].intended+1)
	}
	if tl.t1 <= tl.t0 {
		tl.t1 = tl.t0 + defaultWidth
	}
	span := tl.t1 - tl.t0
	if n := (span + tl.width - 1) / tl.width; n > maxBuckets {
		tl.width = (span + maxBuckets - 1) / maxBuckets
	}
	tl.buckets = make([]bucket, (span+tl.width-1)/tl.width)
	seen := map[string]bool{}
	for _, v := range ops {
		i := (v.intended - tl.t0) / tl.width
		if i < 0 || int(i) >= len(tl.buckets) {
			continue
		}
		b := &tl.buckets[i]
		b.n++
		if v.Outcome == OK {
			b.good++
		}
		var lat int64 = -1
		if v.Done > 0 {
			lat = v.Done - v.intended
			b.lat = append(b.lat, lat)
		}
		if v.Region == "" {
			continue
		}
		if b.regions == nil {
			b.regions = map[string]*regionBucket{}
		}
		rb := b.regions[v.Region]
		if rb == nil {
			rb = &regionBucket{}
			b.regions[v.Region] = rb
		}
		rb.n++
		if v.Outcome == OK {
			rb.ok++
		}
		if lat >= 0 {
			rb.lat = append(rb.lat, lat)
		}
		seen[v.Region] = true
	}
	for r := range seen {
		tl.regions = append(tl.regions, r)
	}
	sort.Strings(tl.regions)
	return tl
}

// chart is the timeline ready for the template: coordinates as strings.
type chart struct {
	Width, Height int
	PlotLeft      int
	PlotRight     int
	PlotWidth     int
	XTickEnd      int
	BucketSeconds string
	Panels        []panel
	XTicks        []tick
	XAxisY        int
	Events        []mark
	Bands         []band
	Legend        []legend
}

type panel struct {
	ID, Title   string
	Top, Bottom int
	Height      int
	YTicks      []tick
	Series      []series
}

type series struct {
	Name, Color, Class, D string
}

type tick struct {
	Pos   int
	Label string
}

type mark struct {
	x              float64
	row            int
	X              string
	Top, Bottom    int
	LabelY         int
	Label, Class   string
	Title          string
	LabelAnchorEnd bool
}

type band struct {
	X, W        string
	Top, Height int
	Class       string
	Title       string
}

type legend struct {
	Name, Color string
}

func (tl timeline) x(t int64) float64 {
	plotW := float64(chartWidth - marginLeft - marginRight)
	return marginLeft + float64(t-tl.t0)/float64(tl.t1-tl.t0)*plotW
}

func f1(x float64) string { return fmt.Sprintf("%.1f", x) }

// steps draws one horizontal segment per bucket, from its start to its
// end, joined vertically; NaN y (no data) breaks the line.
func steps(tl timeline, ys []float64) string {
	var b strings.Builder
	pen := false
	for i, y := range ys {
		if math.IsNaN(y) {
			pen = false
			continue
		}
		x0 := tl.x(tl.t0 + int64(i)*tl.width)
		x1 := tl.x(min(tl.t0+int64(i+1)*tl.width, tl.t1))
		if pen {
			b.WriteString("L" + f1(x0) + "," + f1(y))
		} else {
			if b.Len() > 0 {
				b.WriteString(" ")
			}
			b.WriteString("M" + f1(x0) + "," + f1(y))
		}
		b.WriteString("L" + f1(x1) + "," + f1(y))
		pen = true
	}
	return b.String()
}

func regionColor(regions []string, r string) string {
	i := sort.SearchStrings(regions, r)
	return palette[i%len(palette)]
}

// buildChart lays out three panels sharing the time axis: success ratio,
// successful operations per second by serving region, and p99 latency
// (intended→done) by region on a log scale; with events as vertical lines.
func buildChart(h *History, s Summary, tl timeline) chart {
	c := chart{Width: chartWidth, PlotLeft: marginLeft, PlotRight: chartWidth - marginRight, PlotWidth: chartWidth - marginLeft - marginRight}
	c.BucketSeconds = num(sec(tl.width))
	c.Events = eventMarks(h, s, tl)
	rows := 1
	for _, m := range c.Events {
		rows = max(rows, m.row+1)
	}
	top := rows*labelRowH + 8
	nan := math.NaN()
	for _, r := range tl.regions {
		c.Legend = append(c.Legend, legend{Name: r, Color: regionColor(tl.regions, r)})
	}

	// Panel 1: success ratio, overall and per region.
	p1 := panel{ID: "panel-success", Title: "success ratio (%)", Top: top, Bottom: top + panelHeight, Height: panelHeight}
	y1 := func(ratio float64) float64 { return float64(p1.Bottom) - ratio*float64(panelHeight) }
	for _, v := range []float64{0, 0.5, 1} {
		p1.YTicks = append(p1.YTicks, tick{Pos: int(math.Round(y1(v))), Label: fmt.Sprint(100 * v)})
	}
	for _, r := range tl.regions {
		ys := make([]float64, len(tl.buckets))
		for i, b := range tl.buckets {
			ys[i] = nan
			if rb := b.regions[r]; rb != nil && rb.n > 0 {
				ys[i] = y1(float64(rb.ok) / float64(rb.n))
			}
		}
		p1.Series = append(p1.Series, series{Name: r, Color: regionColor(tl.regions, r), Class: "region", D: steps(tl, ys)})
	}
	ys := make([]float64, len(tl.buckets))
	for i, b := range tl.buckets {
		ys[i] = nan
		if b.n > 0 {
			ys[i] = y1(float64(b.good) / float64(b.n))
		}
	}
	p1.Series = append(p1.Series, series{Name: "all operations", Color: "#111", Class: "overall", D: steps(tl, ys)})

	// Panel 2: successful operations per second by region.
	top2 := p1.Bottom + panelGap
	p2 := panel{ID: "panel-served", Title: "served ok per second, by region", Top: top2, Bottom: top2 + panelHeight, Height: panelHeight}
	maxRate := 1.0
	for _, b := range tl.buckets {
		for _, rb := range b.regions {
			maxRate = max(maxRate, float64(rb.ok)/sec(tl.width))
		}
	}
	maxRate = niceCeil(maxRate)
	y2 := func(v float64) float64 { return float64(p2.Bottom) - v/maxRate*float64(panelHeight) }
	for _, v := range []float64{0, maxRate / 2, maxRate} {
		p2.YTicks = append(p2.YTicks, tick{Pos: int(math.Round(y2(v))), Label: num(v)})
	}
	for _, r := range tl.regions {
		ys := make([]float64, len(tl.buckets))
		for i, b := range tl.buckets {
			ys[i] = y2(0)
			if rb := b.regions[r]; rb != nil {
				ys[i] = y2(float64(rb.ok) / sec(tl.width))
			}
		}
		p2.Series = append(p2.Series, series{Name: r, Color: regionColor(tl.regions, r), Class: "region", D: steps(tl, ys)})
	}

	// Panel 3: p99 latency by region, p50 overall, log scale.
	top3 := p2.Bottom + panelGap
	p3 := panel{ID: "panel-latency", Title: "latency p99 by region, p50 all (ms, intended→done, log scale)", Top: top3, Bottom: top3 + panelHeight, Height: panelHeight}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, b := range tl.buckets {
		for _, l := range b.lat {
			v := math.Max(ms(l), 0.01)
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if math.IsInf(lo, 0) {
		lo, hi = 1, 1000
	}
	lo = math.Pow(10, math.Floor(math.Log10(lo)))
	hi = math.Pow(10, math.Ceil(math.Log10(hi)))
	if hi <= lo {
		hi = lo * 10
	}
	y3 := func(v float64) float64 {
		f := (math.Log10(math.Max(v, lo)) - math.Log10(lo)) / (math.Log10(hi) - math.Log10(lo))
		return float64(p3.Bottom) - f*float64(panelHeight)
	}
	for v := lo; v <= hi*1.0001; v *= 10 {
		p3.YTicks = append(p3.YTicks, tick{Pos: int(math.Round(y3(v))), Label: num(v)})
	}
	for _, r := range tl.regions {
		ys := make([]float64, len(tl.buckets))
		for i, b := range tl.buckets {
			ys[i] = nan
			if rb := b.regions[r]; rb != nil {
				if l := percentiles(rb.lat); l != nil {
					ys[i] = y3(l.P99Ms)
				}
			}
		}
		p3.Series = append(p3.Series, series{Name: r, Color: regionColor(tl.regions, r), Class: "region", D: steps(tl, ys)})
	}
	for i, b := range tl.buckets {
		ys[i] = nan
		if l := percentiles(b.lat); l != nil {
			ys[i] = y3(l.P50Ms)
		}
	}
	p3.Series = append(p3.Series, series{Name: "p50 all", Color: "#111", Class: "overall p50", D: steps(tl, ys)})
	c.Panels = []panel{p1, p2, p3}
	for i := range c.Events {
		m := &c.Events[i]
		m.Top, m.Bottom, m.LabelY = m.row*labelRowH+12, p3.Bottom, m.row*labelRowH+10
	}
	c.XAxisY = p3.Bottom
	c.XTickEnd = p3.Bottom + 4
	c.Height = p3.Bottom + axisHeight

	// Time axis.
	span := sec(tl.t1 - tl.t0)
	step := niceCeil(span / 10)
	for v := 0.0; v <= span+1e-9; v += step {
		t := tl.t0 + int64(v*1e9)
		c.XTicks = append(c.XTicks, tick{Pos: int(math.Round(tl.x(t))), Label: num(sec(t)) + " s"})
	}

	// Bands: the recovery interval (fault to recovery, or to the end).
	plotTop, plotH := p1.Top, p3.Bottom-p1.Top
	if s.FaultAtSeconds != nil {
		from := int64(*s.FaultAtSeconds * 1e9)
		to, title, class := tl.t1, "not recovered", "band-outage open"
		if s.RecoveredAtSeconds != nil {
			to = int64(*s.RecoveredAtSeconds * 1e9)
			title, class = "RTO "+num(*s.RTOSeconds)+" s", "band-outage"
		}
		if to > from {
			c.Bands = append(c.Bands, band{X: f1(tl.x(from)), W: f1(tl.x(to) - tl.x(from)), Top: plotTop, Height: plotH, Class: class, Title: title})
		}
	}

	return c
}

// eventMarks places the events, then the floor and the RTO objective
// after the fault, on the time axis. Each label goes to the first row where
// it does not overlap an earlier one, in time order.
func eventMarks(h *History, s Summary, tl timeline) []mark {
	var marks []mark
	add := func(t int64, label, class, title string) {
		x := tl.x(t)
		marks = append(marks, mark{x: x, X: f1(x), Label: label, Class: class, Title: title})
	}
	evs := append([]Event(nil), h.Events...)
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].T < evs[j].T })
	for _, e := range evs {
		label, class := e.Kind, "ev ev-"+e.Kind
		switch e.Kind {
		case EventFault, EventHeal:
			label = strings.Join(strings.Fields(e.Kind+" "+e.Name+" "+e.Region), " ")
		case EventFailoverStep:
			label, class = strings.TrimSpace(e.Step+" "+e.Region), "ev ev-step"
		case EventPhase:
			label = "phase " + e.Phase
		}
		title := label + " at " + num(sec(e.T)) + " s"
		if e.Detail != "" {
			title += ": " + e.Detail
		}
		add(e.T, label, class, title)
	}
	if s.FaultAtSeconds != nil {
		fault := int64(math.Round(*s.FaultAtSeconds * 1e9))
		if f := s.FloorRTOSeconds; f != nil {
			add(fault+int64(math.Round(*f*1e9)), "floor "+num(*f)+" s", "ev marker-floor", "theoretical floor after the fault")
		}
		if o := s.Objectives.RTOSeconds; o > 0 && fault+int64(o*1e9) <= tl.t1 {
			add(fault+int64(math.Round(o*1e9)), "RTO objective "+num(o)+" s", "ev marker-objective", "RTO objective after the fault")
		}
	}
	sort.SliceStable(marks, func(i, j int) bool { return marks[i].x < marks[j].x })
	var rowEnd []float64
	for i := range marks {
		m := &marks[i]
		w := charWidth*float64(len([]rune(m.Label))) + 6
		lo, hi := m.x, m.x+w
		if m.LabelAnchorEnd = hi > chartWidth; m.LabelAnchorEnd {
			lo, hi = m.x-w, m.x
		}
		m.row = -1
		for r, end := range rowEnd {
			if end < lo {
				m.row = r
				break
			}
		}
		if m.row < 0 && len(rowEnd) < maxLabelRows {
			m.row = len(rowEnd)
			rowEnd = append(rowEnd, 0)
		}
		if m.row < 0 { // too crowded: the row that frees first
			m.row = 0
			for r, end := range rowEnd {
				if end < rowEnd[m.row] {
					m.row = r
				}
			}
		}
		rowEnd[m.row] = hi
	}
	return marks
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}
