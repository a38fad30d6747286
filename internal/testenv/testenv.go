// Package testenv decides, in one place, whether a test that lacks
// something it needs may skip. A test names what it needs (POSTGRES,
// BROWSER, LOOPBACK, TIMING, ...); when GEOSTAMP_REQUIRE_<NAME>=1 is set,
// as .ci/run sets it after installing that thing, the lack is a failure,
// so CI cannot pass by skipping.
package testenv

import (
	"fmt"
	"os"
	"testing"
)

// Required reports whether GEOSTAMP_REQUIRE_<name>=1 is set.
func Required(name string) bool {
	return os.Getenv("GEOSTAMP_REQUIRE_"+name) == "1"
}

// Skip skips t, saying why, unless name is required; then it fails t.
func Skip(t testing.TB, name, format string, args ...any) {
	t.Helper()
	why := fmt.Sprintf(format, args...)
	if Required(name) {
		t.Fatalf("GEOSTAMP_REQUIRE_%s=1: %s", name, why)
		return
	}
	t.Skipf("%s (set GEOSTAMP_REQUIRE_%s=1 to make this a failure)", why, name)
}
