package drill

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrNoRun is returned when a history does not start with a run record.
var ErrNoRun = errors.New("the first record must be a run record")

// Reader reads a history record by record, so a long run need not fit in
// memory twice. Errors name the line. A last line without its newline that
// does not parse is taken as cut off by a crash: it is dropped and
// Truncated reports it.
type Reader struct {
	br        *bufio.Reader
	line      int
	truncated bool
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 64<<10)}
}

// Line is the number of the line last read (from 1).
func (r *Reader) Line() int { return r.line }

// Truncated reports whether the last line was cut off and dropped.
func (r *Reader) Truncated() bool { return r.truncated }

// Next returns the next record, or io.EOF after the last one. Blank lines
// are skipped. Unknown record types and invalid fields are errors.
func (r *Reader) Next() (Record, error) {
	for {
		b, err := r.br.ReadBytes('\n')
		if len(b) == 0 && err != nil {
			if errors.Is(err, io.EOF) {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("drill: history: line %d: %w", r.line+1, err)
		}
		r.line++
		last := err != nil // no newline: the last line
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("drill: history: line %d: %w", r.line, err)
		}
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			continue
		}
		rec, perr := parseRecord(b)
		if perr != nil {
			var syn *json.SyntaxError
			if last && (errors.As(perr, &syn) || errors.Is(perr, io.ErrUnexpectedEOF)) {
				r.truncated = true
				return nil, io.EOF
			}
			return nil, fmt.Errorf("drill: history: line %d: %w", r.line, perr)
		}
		return rec, nil
	}
}

func parseRecord(b []byte) (Record, error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, err
	}
	var rec Record
	switch head.Type {
	case TypeRun:
		rec = new(Run)
	case TypeOp:
		rec = new(Op)
	case TypeEvent:
		rec = new(Event)
	case TypeReadback:
		rec = new(Readback)
	case TypeEnd:
		rec = new(End)
	case "":
		return nil, errors.New(`no "type" field`)
	default:
		return nil, fmt.Errorf("unknown record type %q", head.Type)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(rec); err != nil {
		return nil, fmt.Errorf("%s record: %w", head.Type, err)
	}
	if err := rec.check(); err != nil {
		return nil, fmt.Errorf("%s record: %w", head.Type, err)
	}
	return rec, nil
}

// ReadHistory reads a whole history. The first record must be the run
// header, and there is only one.
func ReadHistory(r io.Reader) (*History, error) {
	rd := NewReader(r)
	h := new(History)
	for n := 0; ; n++ {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			if n == 0 {
				return nil, fmt.Errorf("drill: history: empty: %w", ErrNoRun)
			}
			break
		}
		if err != nil {
			return nil, err
		}
		_, isRun := rec.(*Run)
		switch {
		case n == 0 && !isRun:
			return nil, fmt.Errorf("drill: history: line %d: %w", rd.Line(), ErrNoRun)
		case n > 0 && isRun:
			return nil, fmt.Errorf("drill: history: line %d: a second run record", rd.Line())
		}
		h.Add(rec)
	}
	h.Truncated = rd.Truncated()
	return h, nil
}

// ReadFile reads the history in the file at path.
func ReadFile(path string) (*History, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("drill: %w", err)
	}
	defer f.Close()
	h, err := ReadHistory(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}
