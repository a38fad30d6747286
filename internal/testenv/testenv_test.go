package testenv

import "testing"

func TestRequired(t *testing.T) {
	t.Setenv("GEOSTAMP_REQUIRE_XTEST", "1")
	if !Required("XTEST") {
		t.Fatal("GEOSTAMP_REQUIRE_XTEST=1 is not Required")
	}
	t.Setenv("GEOSTAMP_REQUIRE_XTEST", "")
	if Required("XTEST") {
		t.Fatal("an empty GEOSTAMP_REQUIRE_XTEST is Required")
	}
}

// fakeTB records whether Skip failed or skipped, without ending the test.
type fakeTB struct {
	testing.TB
	failed, skipped bool
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Fatalf(format string, a ...any) { f.failed = true }
func (f *fakeTB) Skipf(format string, a ...any)  { f.skipped = true }

func TestSkipFailsWhenRequired(t *testing.T) {
	for _, tc := range []struct {
		env        string
		fail, skip bool
	}{{"1", true, false}, {"", false, true}} {
		t.Setenv("GEOSTAMP_REQUIRE_XTEST", tc.env)
		f := &fakeTB{}
		Skip(f, "XTEST", "no %s here", "thing")
		if f.failed != tc.fail || f.skipped != tc.skip {
			t.Errorf("GEOSTAMP_REQUIRE_XTEST=%q: failed %v skipped %v, want %v %v", tc.env, f.failed, f.skipped, tc.fail, tc.skip)
		}
	}
}
