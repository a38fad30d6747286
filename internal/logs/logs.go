// Package logs reads the lab's log files (DIR/logs/*.log, one JSON object
// per line, as telemetry.NewLogger and the front door's access log write
// them): it parses the lines, merges the files in time order, filters the
// records by region, component, time and trace, follows the files as they
// grow, and prints a record as a readable line. `geostamp logs` is built
// on it.
//
// A line that is not a JSON object (a panic, or a library writing to
// standard error) is kept: it takes the time and region of the line before
// it in its file and the component "stderr".
package logs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Keys of a log line that Record holds in fields of its own.
const (
	KeyTime      = "time"
	KeyLevel     = "level"
	KeyMsg       = "msg"
	KeyRegion    = "region"
	KeyComponent = "component"
	KeyTraceID   = "trace_id"
	KeySpanID    = "span_id"
)

// ComponentStderr is the component of a line that is not JSON.
const ComponentStderr = "stderr"

// Record is one log line.
type Record struct {
	Time      time.Time
	Level     string
	Msg       string
	Region    string
	Component string
	TraceID   string
	SpanID    string
	// Attrs are the line's other keys, in the line's order, with their
	// JSON values.
	Attrs []Attr
	// Line is the line as written, without its newline.
	Line []byte
	// File is the base name of the file the line comes from.
	File string
	// JSON is false for a line that is not a JSON object; Msg is then the
	// line.
	JSON bool
}

// Attr is one key of a log line and its JSON value.
type Attr struct {
	Key   string
	Value json.RawMessage
}

// Parse parses one JSON log line; ok is false when it is not a JSON object.
func Parse(line []byte) (r Record, ok bool) {
	r.Line = line
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return Record{Line: line, Msg: string(line)}, false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return Record{Line: line, Msg: string(line)}, false
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return Record{Line: line, Msg: string(line)}, false
		}
		var s string
		isString := len(v) > 0 && v[0] == '"' && json.Unmarshal(v, &s) == nil
		if isString && key == KeyTime {
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
				r.Time = t
				continue
			}
		}
		if f := r.field(key); isString && f != nil {
			*f = s
			continue
		}
		r.Attrs = append(r.Attrs, Attr{Key: key, Value: v})
	}
	if _, err := dec.Token(); err != nil {
		return Record{Line: line, Msg: string(line)}, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return Record{Line: line, Msg: string(line)}, false
	}
	r.JSON = true
	return r, true
}

// field is the string field of r that holds key, nil for an attribute.
func (r *Record) field(key string) *string {
	switch key {
	case KeyLevel:
		return &r.Level
	case KeyMsg:
		return &r.Msg
	case KeyRegion:
		return &r.Region
	case KeyComponent:
		return &r.Component
	case KeyTraceID:
		return &r.TraceID
	case KeySpanID:
		return &r.SpanID
	}
	return nil
}

// Filter selects records; its zero value selects all.
type Filter struct {
	// Regions and Components: a record matches when its region (component)
	// is one of them; empty matches any.
	Regions, Components []string
	// Since: records at or after it; zero for all.
	Since time.Time
	// TraceID: records of that trace (32 hex digits); "" for all.
	TraceID string
}

// Match reports whether r passes f.
func (f Filter) Match(r Record) bool {
	if len(f.Regions) > 0 && !slices.Contains(f.Regions, r.Region) {
		return false
	}
	if len(f.Components) > 0 && !slices.Contains(f.Components, r.Component) {
		return false
	}
	if !f.Since.IsZero() && r.Time.Before(f.Since) {
		return false
	}
	if f.TraceID != "" && !strings.EqualFold(r.TraceID, f.TraceID) {
		return false
	}
	return true
}

// Tail reads the log files of a directory incrementally: each Poll returns
// the complete lines written since the previous one. A file that shrinks
// (a new lab in the same directory truncated it) is read again from its
// start; a file that appears is read from its start.
type Tail struct {
	dir   string
	files map[string]*tailFile
}

type tailFile struct {
	offset  int64
	partial []byte // an incomplete last line, kept for the next poll
	last    Record // the last JSON record, for the lines that are not
	lines   int    // lines read so far, for a stable order
}

// NewTail starts reading dir's *.log files from their beginning.
func NewTail(dir string) *Tail { return &Tail{dir: dir, files: map[string]*tailFile{}} }

// Poll reads what the files gained and returns the records that pass f,
// in time order (records with the same time in file and line order).
func (t *Tail) Poll(f Filter) ([]Record, error) {
	names, err := filepath.Glob(filepath.Join(t.dir, "*.log"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	type keyed struct {
		r          Record
		file, line int
	}
	var out []keyed
	for fi, name := range names {
		base := filepath.Base(name)
		tf := t.files[base]
		if tf == nil {
			tf = &tailFile{}
			t.files[base] = tf
		}
		b, err := tf.read(name)
		if err != nil {
			return nil, err
		}
		for len(b) > 0 {
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				tf.partial = append(tf.partial[:0], b...)
				break
			}
			line := bytes.TrimRight(b[:i], "\r")
			b = b[i+1:]
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			r, ok := Parse(line)
			r.File = base
			if ok {
				tf.last = r
			} else {
				r.Time, r.Region, r.Component, r.Level = tf.last.Time, tf.last.Region, ComponentStderr, ""
			}
			tf.lines++
			if f.Match(r) {
				out = append(out, keyed{r, fi, tf.lines})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.r.Time.Equal(b.r.Time) {
			return a.r.Time.Before(b.r.Time)
		}
		if a.file != b.file {
			return a.file < b.file
		}
		return a.line < b.line
	})
	recs := make([]Record, len(out))
	for i, k := range out {
		recs[i] = k.r
	}
	return recs, nil
}

// read returns the partial line kept from before and what the file gained.
func (tf *tailFile) read(name string) ([]byte, error) {
	fh, err := os.Open(name)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() < tf.offset {
		*tf = tailFile{}
	}
	if st.Size() == tf.offset {
		return nil, nil
	}
	if _, err := fh.Seek(tf.offset, io.SeekStart); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(fh, st.Size()-tf.offset))
	if err != nil {
		return nil, err
	}
	tf.offset += int64(len(b))
	if len(tf.partial) > 0 {
		b = append(tf.partial, b...)
		tf.partial = nil
	}
	return b, nil
}

// Follow polls the files every interval until ctx ends, handing each
// non-empty batch to emit, and returns ctx's end (nil) or the first error
// of a poll or of emit. The records of a batch are in time order; a line
// written late with an earlier time comes in its own batch.
func (t *Tail) Follow(ctx context.Context, f Filter, interval time.Duration, emit func([]Record) error) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		recs, err := t.Poll(f)
		if err != nil {
			return err
		}
		if len(recs) > 0 {
			if err := emit(recs); err != nil {
				return err
			}
		}
	}
}

// Read returns every record of dir's log files that passes f, in time
// order.
func Read(dir string, f Filter) ([]Record, error) { return NewTail(dir).Poll(f) }

// WriteJSON writes r as one JSON line: the line as written, or for a line
// that is not JSON an object with its time, region, component "stderr",
// file and the line as msg.
func WriteJSON(w io.Writer, r Record) error {
	if r.JSON {
		_, err := fmt.Fprintf(w, "%s\n", r.Line)
		return err
	}
	b, err := json.Marshal(struct {
		Time      time.Time `json:"time,omitzero"`
		Msg       string    `json:"msg"`
		Region    string    `json:"region,omitempty"`
		Component string    `json:"component"`
		File      string    `json:"file"`
	}{r.Time, r.Msg, r.Region, r.Component, r.File})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// TimeFormat is how Format prints a record's time (UTC, milliseconds).
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Format writes r as one readable line: time, region, component, level,
// message, then the other attributes as key=value (the trace id last):
//
//	2026-01-02T15:04:05.123Z westeurope   failover   INFO  failover promote service=orders epoch=2
func Format(w io.Writer, r Record) error {
	var b strings.Builder
	if r.Time.IsZero() {
		b.WriteString(strings.Repeat("-", len(TimeFormat)-1))
	} else {
		b.WriteString(r.Time.UTC().Format(TimeFormat))
	}
	fmt.Fprintf(&b, " %-13s %-10s %-5s %s", orDash(r.Region), orDash(r.Component), orDash(r.Level), r.Msg)
	for _, a := range r.Attrs {
		b.WriteByte(' ')
		b.WriteString(a.Key)
		b.WriteByte('=')
		b.WriteString(value(a.Value))
	}
	if r.TraceID != "" {
		b.WriteString(" trace_id=" + r.TraceID)
	}
	if !r.JSON && r.File != "" {
		b.WriteString(" file=" + r.File)
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// value renders a JSON value: a string bare when it needs no quotes,
// quoted otherwise; anything else as compact JSON.
func value(v json.RawMessage) string {
	var s string
	if len(v) > 0 && v[0] == '"' && json.Unmarshal(v, &s) == nil {
		if s == "" || strings.ContainsFunc(s, func(r rune) bool {
			return unicode.IsSpace(r) || r == '"' || r == '=' || !unicode.IsPrint(r)
		}) {
			return strconv.Quote(s)
		}
		return s
	}
	var buf bytes.Buffer
	if json.Compact(&buf, v) == nil {
		return buf.String()
	}
	return string(v)
}

// Regions returns the regions that appear in recs, sorted, for the
// message that explains an empty result.
func Regions(recs []Record) []string {
	return distinct(recs, func(r Record) string { return r.Region })
}

// Components returns the components that appear in recs, sorted.
func Components(recs []Record) []string {
	return distinct(recs, func(r Record) string { return r.Component })
}

func distinct(recs []Record, f func(Record) string) []string {
	var out []string
	for _, r := range recs {
		if v := f(r); v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}
