package topology

import (
	"slices"
	"testing"
)

// TestParseNamesDecodingProblemsByPath: values that do not decode, nodes of
// the wrong shape and unknown keys inside custom types are each reported
// with their path, all in one run.
func TestParseNamesDecodingProblemsByPath(t *testing.T) {
	const doc = `name: t
regions:
  - {name: a, priority: high}
  - {name: b, geo: EU}
witness: w
wan:
  a<->b: fast
  b->a: {latency: 3ms, jiter: 1ms}
frontdoor:
  probe: [1s]
  latencyBand: soon
`
	_, err := Parse([]byte(doc))
	if err == nil {
		t.Fatal("no error")
	}
	var got []string
	for _, p := range Problems(err) {
		got = append(got, p.Path)
	}
	want := []string{
		"regions[0].priority",
		"regions[1].geo",
		`wan["a<->b"]`,
		`wan["b->a"].jiter`,
		"frontdoor.probe",
		"frontdoor.latencyBand",
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("no problem at %s in:\n%v", w, err)
		}
	}
	if slices.Contains(got, "(file)") {
		t.Errorf("a problem without a path in:\n%v", err)
	}
}

func TestWalkerShape(t *testing.T) {
	root, err := ParseDocument([]byte("steps: {at: 1s}\nname: [x]\nwait: -1s\nfor: 3 days\nKind: x\n"), "scenario")
	if err != nil {
		t.Fatal(err)
	}
	var w Walker
	f := w.Fields("", root, "steps", "name", "wait", "for", "kind")
	w.List("steps", f["steps"])
	w.Scalar("name", f["name"])
	w.Duration("wait", f["wait"])
	w.Duration("for", f["for"])
	if _, ok := w.Scalar("absent", f["absent"]); ok {
		t.Error("an absent field read as present")
	}
	want := []string{
		`Kind: unknown field (line 5); did you mean "kind"?; fields: steps, name, wait, for, kind`,
		"steps: want a list (line 1)",
		"name: want a single value (line 2)",
		"wait: must not be negative, got -1s",
		`for: "3 days" is not a duration (write it like "5s" or "250ms")`,
	}
	var got []string
	for _, e := range w.Errs {
		got = append(got, e.Error())
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems\n%q\nwant\n%q", got, want)
	}
	if _, err := ParseDocument(nil, "scenario"); err == nil || err.Error() != "(file): empty scenario" {
		t.Errorf("empty document: %v", err)
	}
}
