package postgres

import "testing"

func TestCommonPrefixAndDiscarded(t *testing.T) {
	f := func(pairs ...uint64) []fork {
		var out []fork
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, fork{Epoch: pairs[i], Seq: pairs[i+1]})
		}
		return out
	}
	tests := []struct {
		name          string
		local         []fork
		localPos      uint64
		primary       []fork
		primaryPos    uint64
		wantCommon    uint64
		wantDiscarded uint64
	}{
		{name: "fresh instance", localPos: 0, primary: f(1, 0), primaryPos: 9, wantCommon: 0, wantDiscarded: 0},
		{name: "standby behind", local: f(1, 0), localPos: 5, primary: f(1, 0), primaryPos: 9, wantCommon: 5},
		{name: "planned switchover", local: f(1, 0), localPos: 10, primary: f(1, 0, 2, 10), primaryPos: 12, wantCommon: 10},
		{name: "forced: old primary ahead", local: f(1, 0), localPos: 12, primary: f(1, 0, 2, 10), primaryPos: 15, wantCommon: 10, wantDiscarded: 2},
		{name: "forced: other standby ahead of the new primary", local: f(1, 0), localPos: 11, primary: f(1, 0, 2, 10), primaryPos: 10, wantCommon: 10, wantDiscarded: 1},
		{name: "standby of an old epoch, behind the fork", local: f(1, 0), localPos: 7, primary: f(1, 0, 2, 10, 3, 20), primaryPos: 25, wantCommon: 7},
		{
			name:  "local was promoted at an epoch the primary never saw",
			local: f(1, 0, 2, 12), localPos: 14, primary: f(1, 0, 3, 15), primaryPos: 20,
			wantCommon: 12, wantDiscarded: 2,
		},
		{
			name:  "re-grant at a new epoch on the same primary",
			local: f(1, 0), localPos: 8, primary: f(1, 0, 2, 8), primaryPos: 9, wantCommon: 8,
		},
		{name: "unrelated histories", local: f(1, 0), localPos: 4, primary: f(2, 0), primaryPos: 3, wantCommon: 0, wantDiscarded: 4},
		{name: "fork points out of order", local: f(1, 0), localPos: 12, primary: f(2, 10, 1, 0), primaryPos: 15, wantCommon: 10, wantDiscarded: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := commonPrefix(tt.local, tt.localPos, tt.primary, tt.primaryPos); got != tt.wantCommon {
				t.Errorf("commonPrefix = %d, want %d", got, tt.wantCommon)
			}
			local := history{pos: map[string]uint64{"s": tt.localPos}, forks: map[string][]fork{"s": tt.local}}
			primary := history{pos: map[string]uint64{"s": tt.primaryPos}, forks: map[string][]fork{"s": tt.primary}}
			if got := discarded("s", local, primary); got != tt.wantDiscarded {
				t.Errorf("discarded = %d, want %d", got, tt.wantDiscarded)
			}
		})
	}
}
