// Package internal_test enforces the import direction of ARCHITECTURE.md:
// topology <- health <- routing <- {frontdoor, gslb}; data <- witness <-
// failover; stamp and workload use data; drill uses fault and wan; lab wires
// everything; only cmd wires lab.
package internal_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/geostamp/geostamp/internal/"

// allowed lists, for each package, the internal packages it may import.
// telemetry is infrastructure that any package may use. A new package must
// be added here, which is the point: its place in the design is a decision.
var allowed = map[string][]string{
	"topology":       {},
	"telemetry":      {},
	"testlog":        {},
	"testenv":        {},
	"wan":            {},
	"health":         {"topology"},
	"routing":        {"topology", "health"},
	"frontdoor":      {"topology", "health", "routing"},
	"gslb":           {"topology", "health", "routing"},
	"data":           {},
	"data/jetstream": {"data"},
	"data/memstore":  {"data"},
	"data/postgres":  {"data"},
	"witness":        {"data"},
	"failover":       {"data", "witness", "topology"},
	"workload":       {"data"},
	"stamp":          {"data"},
	"fault":          {"topology", "wan"},
	"drill":          {"topology", "fault", "wan", "routing"},
	"console":        {"topology"},
	"render":         {"topology"},
	"policy":         {"topology", "render"},
	"lab":            {"*"},
}

func TestImportDirection(t *testing.T) {
	fset := token.NewFileSet()
	seen := 0
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		pkg := filepath.ToSlash(filepath.Dir(path))
		if pkg == "." {
			return nil
		}
		seen++
		rules, ok := allowed[pkg]
		if !ok {
			t.Errorf("%s: package %q has no place in the import rules; add it to allowed in architecture_test.go", path, pkg)
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			target, ok := strings.CutPrefix(strings.Trim(imp.Path.Value, `"`), module)
			if !ok || target == "telemetry" && pkg != "telemetry" || slices.Contains(rules, "*") {
				continue
			}
			if !slices.Contains(rules, target) {
				t.Errorf("%s: %s imports %s, against the direction in ARCHITECTURE.md (allowed: %v)", path, pkg, target, rules)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen == 0 {
		t.Fatal("no Go files found")
	}
}
