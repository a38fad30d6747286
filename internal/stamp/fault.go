package stamp

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/geostamp/geostamp/internal/topology"
)

// Fault is an injected brownout: a share of the stamp's requests fail with
// Status or are delayed by Delay before being served. /health/stamp is not
// affected, which is what makes a brownout hard to see for active probes
// and a job for passive outlier detection.
type Fault struct {
	// Share of requests affected, 0 to 1.
	Share float64 `json:"share"`
	// Status answered to affected requests (e.g. 503); 0 serves them after Delay.
	Status int `json:"status,omitempty"`
	// Delay before an affected request is answered or served.
	Delay topology.Duration `json:"delay,omitempty"`
}

// Validate checks the fault's fields.
func (f Fault) Validate() error {
	var errs []error
	if f.Share < 0 || f.Share > 1 {
		errs = append(errs, errors.New("share: must be between 0 and 1"))
	}
	if f.Status != 0 && (f.Status < 400 || f.Status > 599) {
		errs = append(errs, errors.New("status: must be an error status (400-599) or 0"))
	}
	if f.Delay < 0 || time.Duration(f.Delay) > time.Minute {
		errs = append(errs, errors.New("delay: must be between 0 and 1m"))
	}
	return errors.Join(errs...)
}

// SetFault injects f; a zero Fault (or Share 0) clears it.
func (s *Stamp) SetFault(f Fault) error {
	if err := f.Validate(); err != nil {
		return err
	}
	if f.Share == 0 {
		s.fault.Store(nil)
		return nil
	}
	s.fault.Store(&f)
	return nil
}

// Fault returns the injected fault (zero when none).
func (s *Stamp) Fault() Fault {
	if f := s.fault.Load(); f != nil {
		return *f
	}
	return Fault{}
}

// applyFault reports whether the request was answered by the fault.
func (in *ingress) applyFault(w http.ResponseWriter, r *http.Request) bool {
	f := in.s.fault.Load()
	if f == nil || rand.Float64() >= f.Share {
		return false
	}
	if f.Delay > 0 {
		t := time.NewTimer(time.Duration(f.Delay))
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return true
		}
	}
	if f.Status == 0 {
		return false
	}
	w.Header().Set("Retry-After", "1")
	in.writeError(w, f.Status, "injected fault (brownout)")
	return true
}
