//go:build !race

package frontdoor

// raceEnabled: see race_on_test.go.
const raceEnabled = false
