package postgres

import (
	"cmp"
	"slices"
)

// fork is a fork point of a service's history: the primary of Epoch took
// over at position Seq, so the writes after Seq (until the next fork) are
// that epoch's. Promote records one per service and epoch in gs_forks,
// which replicates, so an instance holds the fork points of the history
// it has.
type fork struct {
	Epoch uint64
	Seq   uint64
}

// commonPrefix returns how many writes two histories of a service share:
// a with fork points fa and position pa, b likewise. Histories are equal
// as long as their fork points are (epochs are unique to one primary);
// after the last shared fork point each continues that epoch until its own
// next fork point or its end, and the shorter of the two continuations is
// common.
func commonPrefix(fa []fork, pa uint64, fb []fork, pb uint64) uint64 {
	fa = sortedForks(fa)
	fb = sortedForks(fb)
	i := 0
	for i < len(fa) && i < len(fb) && fa[i] == fb[i] {
		i++
	}
	if i == 0 {
		if len(fa) == 0 && len(fb) == 0 {
			return min(pa, pb) // no promotion recorded on either: one history
		}
		return 0
	}
	end := func(f []fork, pos uint64) uint64 {
		if i < len(f) {
			return min(f[i].Seq, pos)
		}
		return pos
	}
	return min(end(fa, pa), end(fb, pb))
}

// discarded returns how many of local's writes of service the history of
// primary lacks: the writes a rejoin discards.
func discarded(service string, local, primary history) uint64 {
	pos := local.pos[service]
	common := commonPrefix(local.forks[service], pos, primary.forks[service], primary.pos[service])
	if pos > common {
		return pos - common
	}
	return 0
}

func sortedForks(f []fork) []fork {
	return slices.SortedFunc(slices.Values(f), func(x, y fork) int { return cmp.Compare(x.Epoch, y.Epoch) })
}
