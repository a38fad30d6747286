package failover

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/geostamp/geostamp/internal/telemetry"
	"github.com/geostamp/geostamp/internal/witness"
)

// Result is the outcome of a requested failover.
type Result struct {
	Service string `json:"service"`
	From    string `json:"from"`
	To      string `json:"to"`
	Mode    string `json:"mode"`
	Epoch   uint64 `json:"epoch"`
	// Seconds from the request to the promotion of To.
	Seconds float64 `json:"seconds"`
	// Steps are the events of every region from the request on.
	Steps []Event `json:"steps"`
	// TraceID is the failover's trace.
	TraceID string `json:"trace_id,omitempty"`
}

// ErrRefused marks a request that cannot be carried out as asked.
var ErrRefused = errors.New("failover refused")

// Ask requests a failover of group to region to and waits until to holds
// the group at a newer epoch (then a little longer for the old primary to
// rejoin), or until timeout. A planned failover needs a current primary.
//
// The failover is one trace: a span "failover GROUP" (a child of ctx's
// span, if any) whose traceparent the request carries to every region, so
// that their steps are its children. Result.TraceID names it.
func Ask(ctx context.Context, cli *clientv3.Client, auth *witness.Authority, prefix, group, to, mode string, timeout time.Duration) (res Result, err error) {
	ctx, span := tracer.Start(ctx, "failover "+group, trace.WithAttributes(telemetry.AttrService.String(group),
		attribute.String("geostamp.to", to), attribute.String("geostamp.mode", mode)))
	defer func() {
		if res.From != "" {
			span.SetAttributes(attribute.String("geostamp.from", res.From))
		}
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	res = Result{Service: group, To: to, Mode: mode, TraceID: telemetry.TraceID(ctx)}
	if mode != ModePlanned && mode != ModeForced {
		return res, fmt.Errorf("%w: mode %q is not %s or %s", ErrRefused, mode, ModePlanned, ModeForced)
	}
	start := time.Now()
	owner, err := auth.Current(ctx, group)
	if err != nil {
		return res, fmt.Errorf("failover %s: witness: %w", group, err)
	}
	res.From = owner.Holder
	switch {
	case owner.Holder == to:
		return res, fmt.Errorf("%w: %s is already the primary of %s (epoch %d)", ErrRefused, to, group, owner.Epoch)
	case owner.Holder == "" && mode == ModePlanned:
		return res, fmt.Errorf("%w: nobody holds %s now, so there is no primary to hand over from; use a forced failover", ErrRefused, group)
	}
	k := keysFor(prefix, group)
	req := Request{ID: randomID(), To: to, Mode: mode, Deadline: start.Add(timeout), Traceparent: traceparentOf(ctx)}
	if err := put(ctx, cli, k.request(), req); err != nil {
		return res, fmt.Errorf("failover %s: %w", group, err)
	}
	wctx, cancel := context.WithDeadline(ctx, req.Deadline)
	defer cancel()
	// The request's key is deleted when the target promotes or when a
	// region aborts it: then stop waiting.
	gone := cli.Watch(wctx, k.request(), clientv3.WithFilterPut())
	owners := auth.Watch(wctx, group)
	var done, aborted bool
	promoted := func(o witness.Owner) bool {
		if o.Holder == to && o.Epoch > owner.Epoch {
			res.Epoch, res.Seconds, done = o.Epoch, time.Since(start).Seconds(), true
		}
		return done
	}
wait:
	for {
		select {
		case o, ok := <-owners:
			if !ok || promoted(o) {
				break wait
			}
		case w, ok := <-gone:
			if !ok {
				gone = nil
				continue
			}
			if len(w.Events) == 0 {
				continue
			}
			if o, err := auth.Current(wctx, group); err != nil || !promoted(o) {
				aborted = true
			}
			break wait
		}
	}
	if aborted {
		// The abort event follows the deletion through its region's outbox.
		for wait := time.Now().Add(2 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			res.Steps, _ = Events(ctx, cli, prefix, group, start)
			if hasStep(res.Steps, "", StepAbort) || time.Now().After(wait) || ctx.Err() != nil {
				break
			}
		}
		why := lastDetail(res.Steps)
		for _, e := range res.Steps {
			if e.Step == StepAbort {
				why = fmt.Sprintf(" by %s: %s", e.Region, e.Detail)
			}
		}
		return res, fmt.Errorf("%w: failover %s to %s aborted%s", ErrRefused, group, to, why)
	}
	if !done {
		cctx, c := context.WithTimeout(context.Background(), time.Second)
		cli.Txn(cctx).If(clientv3.Compare(clientv3.Value(k.request()), "=", mustJSON(req))).
			Then(clientv3.OpDelete(k.request()), clientv3.OpDelete(k.handoff())).Commit()
		c()
		res.Steps, _ = Events(ctx, cli, prefix, group, start)
		return res, fmt.Errorf("failover %s to %s: not done within %s%s", group, to, timeout, lastDetail(res.Steps))
	}
	// Events reach the witness through each region's outbox: wait, briefly,
	// for the target's promotion and the old primary's repoint or rejoin.
	for wait := time.Now().Add(3 * time.Second); ; {
		res.Steps, _ = Events(ctx, cli, prefix, group, start)
		done := hasStep(res.Steps, to, StepPromote) && (res.From == "" || hasStep(res.Steps, res.From, StepRejoin, StepRepoint))
		if done || time.Now().After(wait) || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return res, nil
}

// hasStep reports whether region ("" for any) took one of steps.
func hasStep(evs []Event, region string, steps ...string) bool {
	for _, e := range evs {
		for _, s := range steps {
			if (region == "" || e.Region == region) && e.Step == s {
				return true
			}
		}
	}
	return false
}

func lastDetail(evs []Event) string {
	if len(evs) == 0 {
		return ""
	}
	e := evs[len(evs)-1]
	return fmt.Sprintf(" (last step: %s %s: %s)", e.Region, e.Step, e.Detail)
}

func randomID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
