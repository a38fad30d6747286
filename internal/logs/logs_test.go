package logs

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, dir, name, text string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

func msgs(recs []Record) string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Msg)
	}
	return strings.Join(out, ",")
}

func TestReadMergesInTimeOrder(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "westeurope.log",
		`{"time":"2026-01-02T15:04:05.100Z","level":"INFO","msg":"w1","component":"stamp","region":"westeurope"}`+"\n"+
			`{"time":"2026-01-02T15:04:05.300Z","level":"WARN","msg":"w3","component":"workload","region":"westeurope","status":503}`+"\n"+
			"panic: boom\n"+
			`{"time":"2026-01-02T15:04:05.500Z","level":"INFO","msg":"w5","component":"failover","region":"westeurope"}`+"\n")
	write(t, dir, "up.log",
		`{"time":"2026-01-02T15:04:05.200Z","level":"INFO","msg":"u2","component":"lab","region":"global"}`+"\n"+
			`{"time":"2026-01-02T15:04:05.300Z","level":"INFO","msg":"u3","component":"lab","region":"westeurope","kind":"region-killed"}`+"\n")
	// The access log writes a request's start time when it ends: a file
	// is not in time order by itself.
	write(t, dir, "access-pop-eu.log",
		`{"time":"2026-01-02T15:04:05.400000Z","level":"INFO","msg":"request","component":"access","pop":"pop-eu","region":"westeurope","status":200}`+"\n"+
			`{"time":"2026-01-02T15:04:05.000000Z","level":"INFO","msg":"request","component":"access","pop":"pop-eu","region":"global","status":403}`+"\n")
	write(t, dir, "notes.txt", "not a log file\n")

	all, err := Read(dir, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	// Equal times keep file order (access-pop-eu, up, westeurope) and line order.
	if got, want := msgs(all), "request,w1,u2,u3,w3,panic: boom,request,w5"; got != want {
		t.Fatalf("merged: %s, want %s", got, want)
	}
	panicLine := all[5]
	if panicLine.JSON || panicLine.Component != ComponentStderr || panicLine.Region != "westeurope" || !panicLine.Time.Equal(all[4].Time) || panicLine.File != "westeurope.log" {
		t.Errorf("the line that is not JSON: %+v", panicLine)
	}
	if w3 := all[4]; w3.Level != "WARN" || len(w3.Attrs) != 1 || w3.Attrs[0].Key != "status" || string(w3.Attrs[0].Value) != "503" {
		t.Errorf("w3: %+v", w3)
	}

	tests := []struct {
		name string
		f    Filter
		want string
	}{
		{"region", Filter{Regions: []string{"westeurope"}}, "w1,u3,w3,panic: boom,request,w5"},
		{"regions", Filter{Regions: []string{"global"}}, "request,u2"},
		{"component", Filter{Components: []string{"lab", "failover"}}, "u2,u3,w5"},
		{"both", Filter{Regions: []string{"westeurope"}, Components: []string{"lab"}}, "u3"},
		{"since", Filter{Since: time.Date(2026, 1, 2, 15, 4, 5, 300e6, time.UTC)}, "u3,w3,panic: boom,request,w5"},
		{"nothing", Filter{Regions: []string{"northeurope"}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := Read(dir, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if got := msgs(recs); got != tc.want {
				t.Errorf("%s, want %s", got, tc.want)
			}
		})
	}
	if got := strings.Join(Regions(all), ","); got != "global,westeurope" {
		t.Errorf("regions %s", got)
	}
}

func TestTraceFilter(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.log",
		`{"time":"2026-01-02T15:04:05Z","msg":"in","region":"r","component":"c","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"}`+"\n"+
			`{"time":"2026-01-02T15:04:06Z","msg":"out","region":"r","component":"c"}`+"\n")
	recs, err := Read(dir, Filter{TraceID: "4BF92F3577B34DA6A3CE929D0E0E4736"})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Msg != "in" || recs[0].SpanID != "00f067aa0ba902b7" {
		t.Fatalf("%+v", recs)
	}
	var b bytes.Buffer
	Format(&b, recs[0])
	if !strings.HasSuffix(b.String(), " trace_id=4bf92f3577b34da6a3ce929d0e0e4736\n") {
		t.Errorf("%q: want the trace id at the end", b.String())
	}
}

func TestTailReadsWhatIsAdded(t *testing.T) {
	dir := t.TempDir()
	tail := NewTail(dir)
	poll := func() string {
		t.Helper()
		recs, err := tail.Poll(Filter{})
		if err != nil {
			t.Fatal(err)
		}
		return msgs(recs)
	}
	if got := poll(); got != "" {
		t.Fatalf("empty dir: %s", got)
	}
	write(t, dir, "a.log", `{"time":"2026-01-02T15:04:05Z","msg":"a1"}`+"\n"+`{"time":"2026-01-02T15:04:06Z","ms`)
	if got := poll(); got != "a1" {
		t.Fatalf("first poll %s, want a1 (the incomplete line waits)", got)
	}
	write(t, dir, "a.log", `g":"a2"}`+"\n")
	write(t, dir, "b.log", `{"time":"2026-01-02T15:04:05.500Z","msg":"b1"}`+"\n")
	if got := poll(); got != "b1,a2" {
		t.Fatalf("second poll %s, want b1,a2", got)
	}
	if got := poll(); got != "" {
		t.Fatalf("nothing new: %s", got)
	}
	// A new lab in the same directory starts the file again.
	if err := os.WriteFile(filepath.Join(dir, "a.log"), []byte(`{"time":"2026-01-02T16:00:00Z","msg":"new"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := poll(); got != "new" {
		t.Fatalf("after truncation %s, want new", got)
	}
}

func TestFollowStopsWithItsContext(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.log", `{"time":"2026-01-02T15:04:05Z","msg":"old","region":"r"}`+"\n")
	tail := NewTail(dir)
	if _, err := tail.Poll(Filter{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan string, 10)
	done := make(chan error, 1)
	go func() {
		done <- tail.Follow(ctx, Filter{Regions: []string{"r"}}, 10*time.Millisecond, func(recs []Record) error {
			got <- msgs(recs)
			return nil
		})
	}()
	write(t, dir, "a.log", `{"time":"2026-01-02T15:04:06Z","msg":"other","region":"x"}`+"\n"+`{"time":"2026-01-02T15:04:07Z","msg":"fresh","region":"r"}`+"\n")
	select {
	case m := <-got:
		if m != "fresh" {
			t.Fatalf("followed %q, want fresh", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the new line never came")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Follow did not return after its context ended")
	}
}

func TestFormat(t *testing.T) {
	line := `{"time":"2026-01-02T15:04:05.123456Z","level":"INFO","msg":"failover promote","component":"failover","region":"westeurope","service":"orders","epoch":2,"detail":"after 1 s","empty":"","tries":["a:503","b:200"]}`
	r, ok := Parse([]byte(line))
	if !ok {
		t.Fatal("not parsed")
	}
	var b bytes.Buffer
	if err := Format(&b, r); err != nil {
		t.Fatal(err)
	}
	want := `2026-01-02T15:04:05.123Z westeurope    failover   INFO  failover promote service=orders epoch=2 detail="after 1 s" empty="" tries=["a:503","b:200"]` + "\n"
	if b.String() != want {
		t.Errorf("got  %q\nwant %q", b.String(), want)
	}
	b.Reset()
	WriteJSON(&b, r)
	if b.String() != line+"\n" {
		t.Errorf("--json changed the line: %q", b.String())
	}
	nonJSON := Record{Msg: "goroutine 1 [running]:", Region: "westeurope", Component: ComponentStderr, File: "westeurope.log", Time: r.Time}
	b.Reset()
	WriteJSON(&b, nonJSON)
	var v map[string]any
	if err := json.Unmarshal(b.Bytes(), &v); err != nil || v["msg"] != nonJSON.Msg || v["component"] != ComponentStderr || v["region"] != "westeurope" {
		t.Errorf("--json of a line that is not JSON: %s (%v)", b.String(), err)
	}
}

func TestParseRejects(t *testing.T) {
	for _, line := range []string{"", "plain text", "[1,2]", `{"msg":"cut`, `{"msg":"a"} trailing`} {
		if _, ok := Parse([]byte(line)); ok {
			t.Errorf("%q parsed as a JSON object", line)
		}
	}
}
