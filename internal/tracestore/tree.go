package tracestore

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// WriteTree prints a trace's spans as a tree: each span under its parent,
// children in start order, with its offset from the trace's start, its
// duration, component and region. Spans whose parent is not in the trace
// (not received, or from outside the lab) are printed at the top level.
func WriteTree(w io.Writer, spans []Span) error {
	if len(spans) == 0 {
		_, err := fmt.Fprintln(w, "no spans")
		return err
	}
	spans = append([]Span(nil), spans...)
	sort.SliceStable(spans, func(i, j int) bool { return spans[i].Start.Before(spans[j].Start) })
	start := spans[0].Start
	ids := map[string]bool{}
	for _, s := range spans {
		ids[s.SpanID] = true
	}
	children := map[string][]int{}
	var roots []int
	for i, s := range spans {
		if s.ParentID != "" && ids[s.ParentID] && s.ParentID != s.SpanID {
			children[s.ParentID] = append(children[s.ParentID], i)
		} else {
			roots = append(roots, i)
		}
	}
	if _, err := fmt.Fprintf(w, "trace %s  %d spans\n", spans[0].TraceID, len(spans)); err != nil {
		return err
	}
	var err error
	var walk func(i, depth int)
	seen := map[int]bool{}
	walk = func(i, depth int) {
		if err != nil || seen[i] {
			return
		}
		seen[i] = true
		s := spans[i]
		where := s.Component
		if where == "" {
			where = s.Service
		}
		if s.Region != "" {
			where += " " + s.Region
		}
		if s.POP != "" {
			where += " pop=" + s.POP
		}
		line := fmt.Sprintf("%s%s  +%.1fms %.1fms  [%s]", strings.Repeat("  ", depth), s.Name, ms(s.Start.Sub(start)), s.Duration, where)
		for _, k := range []string{"geostamp.service", "geostamp.attempt", "geostamp.retry_reason", "http.response.status_code", "geostamp.mode", "geostamp.epoch"} {
			if v, ok := s.Attributes[k]; ok {
				line += " " + strings.TrimPrefix(k, "geostamp.") + "=" + v
			}
		}
		if s.Error != "" {
			line += "  ERROR " + s.Error
		}
		_, err = fmt.Fprintln(w, line)
		for _, c := range children[s.SpanID] {
			walk(c, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
	return err
}
