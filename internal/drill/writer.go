package drill

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sync"
)

// Writer appends records to a history, one JSON object per line. It is safe
// for concurrent use by the generator's goroutines; lines are buffered, so
// call Flush periodically (a crash then loses at most the unflushed tail,
// which Reader tolerates) and at the end.
type Writer struct {
	mu  sync.Mutex
	bw  *bufio.Writer
	err error // sticky: the first write error
}

// NewWriter returns a Writer on w. The caller still owns (and closes) w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{bw: bufio.NewWriterSize(w, 64<<10)}
}

// Write appends one record with its "type" field set. It returns the first
// error the Writer met, now or earlier: after an error every write fails.
func (w *Writer) Write(r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("drill: history: encode %s record: %w", r.recordType(), err)
	}
	b = append(b, '\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if _, err := w.bw.Write(b); err != nil {
		w.err = fmt.Errorf("drill: history: write: %w", err)
	}
	return w.err
}

// Flush writes buffered lines to the underlying writer.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if err := w.bw.Flush(); err != nil {
		w.err = fmt.Errorf("drill: history: flush: %w", err)
	}
	return w.err
}
