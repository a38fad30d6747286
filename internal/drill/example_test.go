package drill_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/geostamp/geostamp/internal/drill"
	"github.com/geostamp/geostamp/internal/topology"
)

// A generator writes the header, one record per operation attempt, the
// events and the readback; the analysis reads the history back.
func ExampleWriter() {
	topo := topology.Default()
	var buf bytes.Buffer
	w := drill.NewWriter(&buf)
	const rate = 10.0 // operations per second, all paths
	_ = w.Write(&drill.Run{
		Version:    drill.Version,
		Scenario:   "region-outage",
		Topology:   topo.Name,
		Model:      topo.Model,
		Started:    time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
		Rate:       rate,
		Objectives: drill.ObjectivesOf(topo.Objectives),
		Floor:      drill.FloorFor(topo, drill.PathFrontDoor, "", 0),
	})
	for seq := int64(0); seq < 100; seq++ {
		intended := int64(float64(seq) * 1e9 / rate) // ns on the run's clock
		op := drill.Op{Seq: seq, Op: drill.OpWrite, Key: fmt.Sprintf("order-%d", seq),
			Intended: intended, Sent: intended, Done: intended + 3e6,
			Outcome: drill.OK, Status: 201, Region: "westeurope", Path: drill.PathFrontDoor, Conn: drill.ConnPooled}
		if seq >= 20 && seq < 35 { // the region is down from 2 s to 3.5 s
			op.Outcome, op.Status, op.Region, op.Error = drill.Fail, 0, "", "connection refused"
		}
		_ = w.Write(&op)
		_ = w.Write(&drill.Readback{T: 11e9, Region: "northeurope", Key: op.Key, Found: op.Outcome == drill.OK})
	}
	_ = w.Write(&drill.Event{T: 2e9, Kind: drill.EventFault, Name: "kill-region", Region: "westeurope"})
	_ = w.Write(&drill.End{T: 11e9, Scheduled: 100})
	_ = w.Flush()

	h, err := drill.ReadHistory(&buf)
	if err != nil {
		fmt.Println(err)
		return
	}
	s := drill.Analyze(h, drill.Options{})
	fmt.Printf("rto %v s ± %v s, floor %v s, failed %d, lost %d, verdict %s\n",
		*s.RTOSeconds, s.RTOResolutionSeconds, *s.FloorRTOSeconds, s.FailedRequests, s.LostWrites, s.Verdict)
	// Output: rto 1.5 s ± 0.1 s, floor 1.8 s, failed 15, lost 0, verdict pass
}
