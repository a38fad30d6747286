package drill

import (
	"io"
	"testing"
)

// BenchmarkAnalyze: a 10-minute drill at 1000 operations per second with
// a 20-second outage and 5 % errors afterwards (the slow path of the RTO
// search: a ratio below 1 and no recovery).
func BenchmarkAnalyze(b *testing.B) {
	h := openLoop(1000, 600, func(o *Op) {
		if !failWhere(o, 60, 80) && o.Intended >= at(80) && o.Seq%20 == 0 {
			o.Outcome, o.Status = Fail, 503
		}
	})
	h.Events = []Event{event(60, EventFault, nil)}
	readBackAll(h, []string{we, ne}, nil)
	b.ResetTimer()
	for b.Loop() {
		Analyze(h, Options{})
	}
}

func BenchmarkWriteReport(b *testing.B) {
	h := openLoop(1000, 600, func(o *Op) { failWhere(o, 60, 80) })
	h.Events = []Event{event(60, EventFault, nil)}
	readBackAll(h, []string{we}, nil)
	s := Analyze(h, Options{})
	b.ResetTimer()
	for b.Loop() {
		if err := WriteReport(io.Discard, h, s); err != nil {
			b.Fatal(err)
		}
	}
}
