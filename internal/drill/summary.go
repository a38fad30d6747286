package drill

import "time"

// Verdicts.
const (
	VerdictPass = "pass"
	VerdictFail = "fail"
)

// Summary is the result of Analyze: the content of summary.json. Times
// named *_at_seconds are seconds since the run's start; other *_seconds
// are spans. Fields that cannot be measured are null.
type Summary struct {
	Scenario string `json:"scenario"`
	Topology string `json:"topology,omitempty"`
	Target   string `json:"target,omitempty"`
	// Started is the wall-clock time of the run's start.
	Started time.Time `json:"started"`
	// Rate is the open-loop rate (operations per second, all paths).
	Rate float64 `json:"rate"`
	// DurationSeconds spans the schedule: from LoadStart to one send
	// interval after the last intended instant.
	DurationSeconds float64 `json:"duration_seconds"`
	// Ops counts operations (not attempts); Attempts counts records.
	Ops      int `json:"ops"`
	Attempts int `json:"attempts"`
	Reads    int `json:"reads"`
	Writes   int `json:"writes"`

	// Verdict is pass only when the run is valid and every check passed.
	Verdict string `json:"verdict"`
	// Valid is false when the measurement cannot be trusted (generator
	// behind, operations missing or off schedule, writes never read back).
	Valid bool `json:"valid"`
	// Reasons explains every failed check and every cause of invalidity.
	Reasons []string `json:"reasons"`
	Checks  []Check  `json:"checks"`

	// FaultAtSeconds is the first fault event; null when none.
	FaultAtSeconds *float64 `json:"fault_at_seconds"`
	// RTOSeconds is the recovery time (see Analyze); null when the run
	// never recovered. RTOResolutionSeconds is its uncertainty: the send
	// interval at the recovery point (the true instant lies within one
	// resolution before FaultAt+RTO).
	RTOSeconds           *float64 `json:"rto_seconds"`
	RTOResolutionSeconds float64  `json:"rto_resolution_seconds"`
	Recovered            bool     `json:"recovered"`
	RecoveredAtSeconds   *float64 `json:"recovered_at_seconds"`
	// FailbackAtSeconds starts the failback phase (a phase event
	// "failback", else the first heal after the fault); FailbackRTOSeconds
	// is measured from it the same way as the RTO.
	FailbackAtSeconds  *float64 `json:"failback_at_seconds"`
	FailbackRTOSeconds *float64 `json:"failback_rto_seconds"`
	// FloorRTOSeconds is the theoretical floor (sum of Floor); null when
	// the header has no floor terms.
	FloorRTOSeconds *float64    `json:"floor_rto_seconds"`
	Floor           []FloorTerm `json:"floor"`
	Objectives      Objectives  `json:"objectives"`
	// Method records the parameters of the definitions used.
	Method Method `json:"method"`

	// FailedRequests counts operations whose outcome is fail or unknown,
	// over the whole run; FailedAfterFault those intended at or after the
	// fault; UnknownRequests the unknown ones.
	FailedRequests   int `json:"failed_requests"`
	FailedAfterFault int `json:"failed_after_fault"`
	UnknownRequests  int `json:"unknown_requests"`
	// Outage spans the failed operations intended from the fault to the
	// failback start, or to the end (first to last failure, by intended
	// instant); FailbackOutage those from the failback start to the end.
	// Null when none failed.
	Outage         *Outage `json:"outage"`
	FailbackOutage *Outage `json:"failback_outage"`
	// AvailabilityPercent is the share of successful operations over the
	// run; SteadyAvailabilityPercent over the operations outside the
	// recovery intervals (fault to recovery, failback to its recovery),
	// which is what the availability objective is checked against.
	AvailabilityPercent       float64  `json:"availability_percent"`
	SteadyAvailabilityPercent *float64 `json:"steady_availability_percent"`

	// AckedWrites counts acknowledged writes; UnverifiedWrites those with
	// no readback at all.
	AckedWrites      int `json:"acked_writes"`
	UnverifiedWrites int `json:"unverified_writes"`
	// LostWrites counts acknowledged writes missing after convergence,
	// split-brain writes excluded; RPOSeconds is the span from the last
	// acknowledged write that survived before the first loss to the last
	// lost acknowledgement (0 when nothing was lost).
	LostWrites int        `json:"lost_writes"`
	RPOSeconds float64    `json:"rpo_seconds"`
	Loss       *LossRange `json:"loss"`
	// SplitBrainWrites counts lost writes acknowledged by a region that was
	// fenced or no longer primary at acknowledgement time.
	SplitBrainWrites int `json:"split_brain_writes"`
	// PositionGap sums the gap of the promote events: the replication
	// positions' count of writes the new primary lacked; null when none was
	// reported. It is a cross-check of LostWrites.
	PositionGap *int64 `json:"position_gap"`
	// DiscardedWrites sums what old primaries discarded when they rejoined
	// (rejoin steps): the exact loss by positions, acknowledged writes and
	// writes whose acknowledgement never reached the client alike, so it
	// is at least LostWrites + SplitBrainWrites. Null without a rejoin in
	// the run.
	DiscardedWrites *int64 `json:"discarded_writes"`
	// DivergentWrites were acknowledged, survived in the authoritative
	// region and are missing in another region that answered the readback.
	DivergentWrites int `json:"divergent_writes"`
	// UnknownWritesApplied/Absent split the writes with an unknown outcome
	// by whether the readback found them (neither is loss);
	// FailedWritesApplied counts writes reported failed and found anyway.
	UnknownWritesApplied int `json:"unknown_writes_applied"`
	UnknownWritesAbsent  int `json:"unknown_writes_absent"`
	FailedWritesApplied  int `json:"failed_writes_applied"`
	// LostKeys and SplitBrainKeys list up to MaxKeys keys, by
	// acknowledgement time.
	LostKeys       []string `json:"lost_keys,omitempty"`
	SplitBrainKeys []string `json:"split_brain_keys,omitempty"`

	// StaleReads counts successful reads that returned older data than a
	// write acknowledged before the read was sent.
	StaleReads int `json:"stale_reads"`

	Phases        []PhaseStats  `json:"phases"`
	Regions       []RegionStats `json:"regions"`
	Streams       []StreamStats `json:"streams"`
	FailoverSteps []Step        `json:"failover_steps"`
	Generator     Generator     `json:"generator"`
	// Notes are observations that do not change the verdict.
	Notes []string `json:"notes"`
}

// MaxKeys bounds Summary.LostKeys and Summary.SplitBrainKeys.
const MaxKeys = 50

// Check is one judged objective.
type Check struct {
	Name      string   `json:"name"` // valid, rto, failback_rto, rpo, split_brain, availability
	Objective *float64 `json:"objective"`
	Measured  *float64 `json:"measured"`
	Unit      string   `json:"unit,omitempty"`
	Pass      bool     `json:"pass"`
	Detail    string   `json:"detail,omitempty"`
}

// Method holds the parameters the definitions were applied with.
type Method struct {
	WindowSeconds     float64 `json:"window_seconds"`
	HoldSeconds       float64 `json:"hold_seconds"`
	RecoveryRatio     float64 `json:"recovery_ratio"`
	SlowAfterSeconds  float64 `json:"slow_after_seconds,omitempty"`
	MaxSendLagSeconds float64 `json:"max_send_lag_seconds"`
	MaxLateFraction   float64 `json:"max_late_fraction"`
	Latency           string  `json:"latency"`
}

// Outage is the span of failed operations after the fault.
type Outage struct {
	StartAtSeconds  float64 `json:"start_at_seconds"`
	EndAtSeconds    float64 `json:"end_at_seconds"`
	DurationSeconds float64 `json:"duration_seconds"`
	Failed          int     `json:"failed"`
}

// LossRange places the lost writes on the run's clock.
type LossRange struct {
	// LastSurvivingAtSeconds is the acknowledgement of the last write that
	// survived before the first lost one: the recovery point (the load's
	// start when none did).
	LastSurvivingAtSeconds float64 `json:"last_surviving_at_seconds"`
	FirstLostAtSeconds     float64 `json:"first_lost_at_seconds"`
	LastLostAtSeconds      float64 `json:"last_lost_at_seconds"`
}

// PhaseStats are counts and latencies of the operations intended in a phase.
type PhaseStats struct {
	Name           string  `json:"name"`
	StartAtSeconds float64 `json:"start_at_seconds"`
	EndAtSeconds   float64 `json:"end_at_seconds"`
	Ops            int     `json:"ops"`
	Failed         int     `json:"failed"`
	// Latency is intended→done (free of coordinated omission);
	// ServiceTime is sent→done of the last attempt, what a closed-loop
	// client would report. Both over operations that completed (done > 0).
	Latency     *Latency `json:"latency"`
	ServiceTime *Latency `json:"service_time"`
}

// Latency percentiles in milliseconds (nearest rank).
type Latency struct {
	N     int     `json:"n"`
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

// RegionStats counts operations by the region that served them; "" is
// operations without a response.
type RegionStats struct {
	Region     string `json:"region"`
	Ops        int    `json:"ops"`
	OK         int    `json:"ok"`
	Fail       int    `json:"fail"`
	Unknown    int    `json:"unknown"`
	Reads      int    `json:"reads"`
	Writes     int    `json:"writes"`
	StaleReads int    `json:"stale_reads"`
}

// StreamStats are the results of one path and connection mode.
type StreamStats struct {
	Path                 string   `json:"path"`
	Conn                 string   `json:"conn"`
	Ops                  int      `json:"ops"`
	Failed               int      `json:"failed"`
	RTOSeconds           *float64 `json:"rto_seconds"`
	RTOResolutionSeconds float64  `json:"rto_resolution_seconds"`
}

// Step is a failover step placed on the run's clock.
type Step struct {
	Step              string   `json:"step"`
	AtSeconds         float64  `json:"at_seconds"`
	AfterFaultSeconds *float64 `json:"after_fault_seconds"`
	Region            string   `json:"region,omitempty"`
	Service           string   `json:"service,omitempty"`
	Epoch             int64    `json:"epoch,omitempty"`
}

// Generator says whether the load generator kept its open-loop schedule.
type Generator struct {
	// LateOps were sent (first attempt) more than MaxSendLag after their
	// intended instant; LateFraction is their share.
	LateOps      int     `json:"late_ops"`
	LateFraction float64 `json:"late_fraction"`
	MaxSendLagMs float64 `json:"max_send_lag_ms"`
	// OffSchedule ops have an intended instant that is not
	// LoadStart + seq/Rate (within half a send interval): not open loop.
	OffSchedule int `json:"off_schedule"`
	// Missing ops were scheduled and have no record; Duplicate records
	// repeat a (seq, attempt) or a write key.
	Missing   int64 `json:"missing"`
	Duplicate int   `json:"duplicate"`
	// SelfReportedBehind is the generator's own verdict (run or end record).
	SelfReportedBehind bool `json:"self_reported_behind"`
}
