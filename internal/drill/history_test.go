package drill

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// writeHistory writes h the way a generator does: header, then records
// from concurrent goroutines, then the end record.
func writeHistory(t *testing.T, w io.Writer, h *History) {
	t.Helper()
	hw := NewWriter(w)
	if err := hw.Write(&h.Run); err != nil {
		t.Fatal(err)
	}
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for g := range workers {
		wg.Go(func() {
			for i := g; i < len(h.Ops); i += workers {
				if err := hw.Write(&h.Ops[i]); err != nil {
					errs <- err
					return
				}
				if i%500 == 0 {
					if err := hw.Flush(); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := range h.Events {
		if err := hw.Write(&h.Events[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range h.Readbacks {
		if err := hw.Write(&h.Readbacks[i]); err != nil {
			t.Fatal(err)
		}
	}
	if h.End != nil {
		if err := hw.Write(h.End); err != nil {
			t.Fatal(err)
		}
	}
	if err := hw.Flush(); err != nil {
		t.Fatal(err)
	}
}

func TestWriterReaderRoundTrip(t *testing.T) {
	h := outageHistory()
	h.Ops[3].Found = ptr(true)
	h.Events[3].Gap = ptr(int64(4))
	var buf bytes.Buffer
	writeHistory(t, &buf, h)

	got, err := ReadHistory(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if got.Truncated {
		t.Error("Truncated set on a complete history")
	}
	// Concurrent writers interleave operations: the analysis does not care.
	want := Analyze(h, Options{})
	if s := Analyze(got, Options{}); !reflect.DeepEqual(s, want) {
		t.Errorf("summary of the read history differs from the original")
	}
	if len(got.Ops) != len(h.Ops) || len(got.Events) != len(h.Events) || len(got.Readbacks) != len(h.Readbacks) || got.End == nil {
		t.Fatalf("read %d ops %d events %d readbacks, want %d %d %d", len(got.Ops), len(got.Events), len(got.Readbacks), len(h.Ops), len(h.Events), len(h.Readbacks))
	}
	got.Run.Type = ""
	if !reflect.DeepEqual(got.Run, h.Run) {
		t.Errorf("run = %+v\nwant %+v", got.Run, h.Run)
	}
	// Every line carries its type.
	for i, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if !strings.HasPrefix(line, `{"type":"`) {
			t.Fatalf("line %d has no leading type: %s", i+1, line)
		}
	}
}

func TestReaderTruncatedLastLine(t *testing.T) {
	h := openLoop(10, 1, nil)
	var buf bytes.Buffer
	writeHistory(t, &buf, h)
	full := buf.Bytes()
	// Cut the last line (the end record) in the middle, as a crash does.
	cut := full[:len(full)-12]
	got, err := ReadHistory(bytes.NewReader(cut))
	if err != nil {
		t.Fatalf("truncated last line: %v", err)
	}
	if !got.Truncated || got.End != nil || len(got.Ops) != 10 {
		t.Errorf("truncated %v end %v ops %d, want true, nil, 10", got.Truncated, got.End, len(got.Ops))
	}
	s := Analyze(got, Options{})
	notes := strings.Join(s.Notes, "\n")
	if !strings.Contains(notes, "last line was cut off") || !strings.Contains(notes, "no end record") {
		t.Errorf("notes %q", s.Notes)
	}

	// A complete last line without its newline is read.
	got, err = ReadHistory(bytes.NewReader(bytes.TrimSuffix(full, []byte("\n"))))
	if err != nil || got.Truncated || got.End == nil {
		t.Errorf("last line without newline: err %v truncated %v end %v", err, got != nil && got.Truncated, got != nil && got.End != nil)
	}
}

func TestReaderErrors(t *testing.T) {
	run := `{"type":"run","version":1,"scenario":"x","rate":10,"started":"2025-01-01T00:00:00Z","load_start":0,"objectives":{"rto_seconds":1,"rpo_seconds":0,"availability_percent":0}}`
	op := `{"type":"op","seq":0,"op":"read","intended":0,"sent":0,"done":5,"outcome":"ok"}`
	cases := []struct {
		name, in, want string
	}{
		{"empty", "", "empty: the first record must be a run record"},
		{"op first", op + "\n" + run + "\n", "line 1: the first record must be a run record"},
		{"second run", run + "\n" + op + "\n" + run + "\n", "line 3: a second run record"},
		{"bad json in the middle", run + "\n{\"type\":\"op\",\n" + op + "\n", "line 2: unexpected end of JSON input"},
		{"unknown type", run + "\n" + `{"type":"metric","t":1}` + "\n", `line 2: unknown record type "metric"`},
		{"no type", run + "\n" + `{"t":1}` + "\n", `line 2: no "type" field`},
		{"unknown field", run + "\n" + `{"type":"event","t":1,"kind":"fault","colour":"red"}` + "\n", `line 2: event record: json: unknown field "colour"`},
		{"bad outcome", run + "\n\n" + strings.Replace(op, `"ok"`, `"maybe"`, 1) + "\n", `line 3: op record: outcome: want ok, fail or unknown, got "maybe"`},
		{"bad step", run + "\n" + `{"type":"event","t":1,"kind":"failover-step","step":"panic"}` + "\n", `line 2: event record: step: want detect, decide, fence, promote, repoint or rejoin, got "panic"`},
		{"write without key", run + "\n" + strings.Replace(op, `"read"`, `"write"`, 1) + "\n", "line 2: op record: key: required on a write"},
		{"bad version", strings.Replace(run, `"version":1`, `"version":7`, 1) + "\n", "line 1: run record: version: want 1..1, got 7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadHistory(strings.NewReader(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
			if strings.Contains(c.want, "first record") && !errors.Is(err, ErrNoRun) {
				t.Errorf("err = %v, want errors.Is ErrNoRun", err)
			}
		})
	}
}

func TestReaderStreams(t *testing.T) {
	var buf bytes.Buffer
	h := openLoop(10, 1, nil)
	writeHistory(t, &buf, h)
	r := NewReader(&buf)
	kinds := map[string]int{}
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		kinds[rec.recordType()]++
	}
	if kinds[TypeRun] != 1 || kinds[TypeOp] != 10 || kinds[TypeEnd] != 1 || r.Line() != 12 {
		t.Errorf("records %v after %d lines", kinds, r.Line())
	}
}

type failingWriter struct{ n int }

func (f *failingWriter) Write(p []byte) (int, error) {
	f.n++
	return 0, fmt.Errorf("disk full")
}

func TestWriterStickyError(t *testing.T) {
	fw := &failingWriter{}
	w := NewWriter(fw)
	big := Op{Seq: 1, Op: OpRead, Outcome: OK, Error: strings.Repeat("x", 70<<10)}
	err := w.Write(&big)
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Write = %v, want the disk-full error", err)
	}
	if err := w.Write(&Op{Seq: 2, Op: OpRead, Outcome: OK}); err == nil {
		t.Error("second Write succeeded after an error")
	}
	if err := w.Flush(); err == nil {
		t.Error("Flush succeeded after an error")
	}
	if fw.n != 1 {
		t.Errorf("underlying writer called %d times after the first error, want 1 in all", fw.n)
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "history.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	writeHistory(t, f, openLoop(10, 1, nil))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	h, err := ReadFile(path)
	if err != nil || len(h.Ops) != 10 {
		t.Fatalf("ReadFile: %v", err)
	}
	if _, err := ReadFile(filepath.Join(dir, "missing.jsonl")); err == nil || !strings.Contains(err.Error(), "missing.jsonl") {
		t.Errorf("ReadFile(missing) = %v", err)
	}
}
