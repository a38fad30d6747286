// Package internal_test enforces the import direction that
// docs/architecture.md states. The rules are the package table of that
// page, read here, so the page and the test cannot disagree.
package internal_test

import (
	"bufio"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	module  = "github.com/geostamp/geostamp/"
	docPath = "../docs/architecture.md"
	// tableHeader starts the rules table in docPath.
	tableHeader = "| package | role | may import |"
)

// Roles of a package in the table.
const (
	roleCommand   = "command"   // a main package
	roleComponent = "component" // imports what its row lists, and leaves
	roleLeaf      = "leaf"      // any package may import it; imports only leaves
	roleTest      = "test"      // only _test.go files may import it
)

// rule is one row of the table.
type rule struct {
	role  string
	allow []string
	line  int // in docPath, for messages
}

// edge is one import of an internal package by a non-test file.
type edge struct {
	file, target string
}

// parseRules reads the package table: the first markdown table whose header
// starts with tableHeader. Cells name packages in backquotes, separated by
// commas; "—" or "-" is none.
func parseRules(doc string) (map[string]rule, error) {
	rules := map[string]rule{}
	sc := bufio.NewScanner(strings.NewReader(doc))
	in, found, n := false, false, 0
	var errs []string
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, tableHeader):
			if found {
				errs = append(errs, fmt.Sprintf("line %d: a second rules table", n))
			}
			in, found = true, true
			continue
		case !in:
			continue
		case !strings.HasPrefix(line, "|"):
			in = false
			continue
		case strings.HasPrefix(line, "|---"):
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) < 3 {
			errs = append(errs, fmt.Sprintf("line %d: want | package | role | may import | …", n))
			continue
		}
		names := func(cell string) ([]string, error) {
			cell = strings.TrimSpace(cell)
			if cell == "—" || cell == "-" {
				return nil, nil
			}
			var out []string
			for _, part := range strings.Split(cell, ",") {
				part = strings.TrimSpace(part)
				name, ok := strings.CutPrefix(part, "`")
				name, ok2 := strings.CutSuffix(name, "`")
				if !ok || !ok2 || name == "" || strings.ContainsAny(name, "` ") {
					return nil, fmt.Errorf("%q is not a `package`", part)
				}
				out = append(out, name)
			}
			return out, nil
		}
		pkg, err := names(cells[0])
		if err != nil || len(pkg) != 1 {
			errs = append(errs, fmt.Sprintf("line %d: package cell %q: want one `package`", n, strings.TrimSpace(cells[0])))
			continue
		}
		role := strings.TrimSpace(cells[1])
		switch role {
		case roleCommand, roleComponent, roleLeaf, roleTest:
		default:
			errs = append(errs, fmt.Sprintf("line %d: %s: unknown role %q (command, component, leaf, test)", n, pkg[0], role))
			continue
		}
		allow, err := names(cells[2])
		if err != nil {
			errs = append(errs, fmt.Sprintf("line %d: %s: may import: %v", n, pkg[0], err))
			continue
		}
		if _, dup := rules[pkg[0]]; dup {
			errs = append(errs, fmt.Sprintf("line %d: %s has a second row", n, pkg[0]))
			continue
		}
		rules[pkg[0]] = rule{role: role, allow: allow, line: n}
	}
	if !found {
		errs = append(errs, fmt.Sprintf("no table starting %q", tableHeader))
	}
	if len(errs) > 0 {
		return rules, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return rules, nil
}

// check returns every violation of rules by the packages found in the module
// (package name -> its non-test files' internal imports). Every package
// needs a row, every row a package; imports must follow the rows; rows must
// name known packages and permit no cycle.
func check(rules map[string]rule, pkgs map[string][]edge) []string {
	var out []string
	for _, name := range sortedKeys(pkgs) {
		if _, ok := rules[name]; !ok {
			out = append(out, fmt.Sprintf("package %s has no row in docs/architecture.md: decide its place (role, may import) and add it", name))
		}
	}
	for _, name := range sortedKeys(rules) {
		r := rules[name]
		if _, ok := pkgs[name]; !ok {
			out = append(out, fmt.Sprintf("docs/architecture.md:%d: row %s names no package of the module (stale entry)", r.line, name))
		}
		for _, a := range r.allow {
			ar, ok := rules[a]
			switch {
			case !ok:
				out = append(out, fmt.Sprintf("docs/architecture.md:%d: %s may import %s, which has no row", r.line, name, a))
			case a == name:
				out = append(out, fmt.Sprintf("docs/architecture.md:%d: %s may import itself", r.line, name))
			case ar.role == roleTest || ar.role == roleCommand:
				out = append(out, fmt.Sprintf("docs/architecture.md:%d: %s may import %s, a %s package", r.line, name, a, ar.role))
			case r.role == roleLeaf && ar.role != roleLeaf:
				out = append(out, fmt.Sprintf("docs/architecture.md:%d: leaf %s may import %s, which is not a leaf", r.line, name, a))
			}
		}
	}
	if cyc := cycle(rules); cyc != nil {
		out = append(out, "docs/architecture.md: the rows allow an import cycle: "+strings.Join(cyc, " -> "))
	}
	for _, name := range sortedKeys(pkgs) {
		r, ok := rules[name]
		if !ok {
			continue
		}
		for _, e := range pkgs[name] {
			tr, known := rules[e.target]
			switch {
			case !known:
				// Reported above as a package without a row.
			case tr.role == roleTest:
				out = append(out, fmt.Sprintf("%s: %s imports %s, which only tests may import", e.file, name, e.target))
			case slices.Contains(r.allow, e.target):
			case tr.role == roleLeaf && r.role != roleLeaf:
			default:
				out = append(out, fmt.Sprintf("%s: %s imports %s, against docs/architecture.md:%d (%s %s may import: %s, and leaves)",
					e.file, name, e.target, r.line, r.role, name, list(r.allow)))
			}
		}
	}
	return out
}

// cycle returns a cycle of allowed imports, nil if there is none.
func cycle(rules map[string]rule) []string {
	state := map[string]int{} // 0 new, 1 on the path, 2 done
	var path []string
	var visit func(string) []string
	visit = func(n string) []string {
		state[n] = 1
		path = append(path, n)
		for _, m := range rules[n].allow {
			if _, ok := rules[m]; !ok {
				continue
			}
			switch state[m] {
			case 1:
				i := slices.Index(path, m)
				return append(slices.Clone(path[i:]), m)
			case 0:
				if c := visit(m); c != nil {
					return c
				}
			}
		}
		path = path[:len(path)-1]
		state[n] = 2
		return nil
	}
	for _, n := range sortedKeys(rules) {
		if state[n] == 0 {
			if c := visit(n); c != nil {
				return c
			}
		}
	}
	return nil
}

// scan finds the module's packages under root (directories with a non-test
// Go file; nested modules, testdata and hidden directories excluded) and the
// internal imports of their non-test files. Internal packages are named by
// their path under internal/, others by their path in the module.
func scan(root string) (map[string][]edge, error) {
	fset := token.NewFileSet()
	pkgs := map[string][]edge{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			base := d.Name()
			if path != root && (strings.HasPrefix(base, ".") || strings.HasPrefix(base, "_") || base == "testdata" || base == "node_modules") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); path != root && err == nil {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		name := pkgName(filepath.ToSlash(rel))
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		if _, ok := pkgs[name]; !ok {
			pkgs[name] = nil
		}
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if rest, ok := strings.CutPrefix(p, module); ok {
				file, _ := filepath.Rel(root, path)
				pkgs[name] = append(pkgs[name], edge{file: filepath.ToSlash(file), target: pkgName(rest)})
			}
		}
		return nil
	})
	return pkgs, err
}

func pkgName(rel string) string {
	if n, ok := strings.CutPrefix(rel, "internal/"); ok {
		return n
	}
	return rel
}

func TestImportDirection(t *testing.T) {
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := parseRules(string(doc))
	if err != nil {
		t.Fatalf("%s: %v", docPath, err)
	}
	pkgs, err := scan("..")
	if err != nil {
		t.Fatal(err)
	}
	// The scan must see the module's main packages, or it checks nothing.
	for _, must := range []string{"cmd/geostamp", "topology", "lab"} {
		if _, ok := pkgs[must]; !ok {
			t.Fatalf("scan of the module found no package %s (found %v)", must, sortedKeys(pkgs))
		}
	}
	for _, p := range check(rules, pkgs) {
		t.Error(p)
	}
}

// TestCheck runs the checker over made-up tables and graphs, so that each
// kind of violation is shown to fail and a clean graph to pass.
func TestCheck(t *testing.T) {
	const doc = `# made up

| package | role | may import | job |
|---|---|---|---|
| ` + "`cmd/app`" + ` | command | ` + "`lab`, `model`" + ` | the command |
| ` + "`model`" + ` | component | — | the model |
| ` + "`engine`" + ` | component | ` + "`model`" + ` | uses the model |
| ` + "`lab`" + ` | component | ` + "`engine`, `model`" + ` | wires |
| ` + "`logs`" + ` | leaf | — | any package may use it |
| ` + "`testhelp`" + ` | test | — | tests only |

text after the table
`
	base, err := parseRules(doc)
	if err != nil {
		t.Fatal(err)
	}
	clean := func() map[string][]edge {
		return map[string][]edge{
			"cmd/app":  {{"cmd/app/main.go", "lab"}, {"cmd/app/main.go", "model"}, {"cmd/app/main.go", "logs"}},
			"model":    nil,
			"engine":   {{"internal/engine/e.go", "model"}, {"internal/engine/e.go", "logs"}},
			"lab":      {{"internal/lab/l.go", "engine"}},
			"logs":     nil,
			"testhelp": nil,
		}
	}
	tests := []struct {
		name  string
		rules func(map[string]rule)
		graph func(map[string][]edge)
		want  []string // each must appear in some violation; none: clean
	}{
		{name: "clean graph passes"},
		{
			name:  "stale entry: a row for a package that does not exist",
			rules: func(r map[string]rule) { r["console"] = rule{role: roleComponent, allow: []string{"model"}, line: 42} },
			want:  []string{"docs/architecture.md:42: row console names no package of the module (stale entry)"},
		},
		{
			name:  "missing entry: a package without a row",
			graph: func(g map[string][]edge) { g["cache"] = []edge{{"internal/cache/c.go", "model"}} },
			want:  []string{"package cache has no row"},
		},
		{
			name:  "forbidden import: against the direction",
			graph: func(g map[string][]edge) { g["model"] = []edge{{"internal/model/m.go", "engine"}} },
			want:  []string{"internal/model/m.go: model imports engine, against docs/architecture.md:6"},
		},
		{
			name:  "forbidden import: a test helper in non-test code",
			graph: func(g map[string][]edge) { g["engine"] = append(g["engine"], edge{"internal/engine/e.go", "testhelp"}) },
			want:  []string{"engine imports testhelp, which only tests may import"},
		},
		{
			name:  "forbidden import: a leaf importing a component",
			graph: func(g map[string][]edge) { g["logs"] = []edge{{"internal/logs/l.go", "model"}} },
			want:  []string{"logs imports model, against"},
		},
		{
			name:  "a row may not allow a cycle",
			rules: func(r map[string]rule) { m := r["model"]; m.allow = []string{"lab"}; r["model"] = m },
			want:  []string{"allow an import cycle: "},
		},
		{
			name:  "a row may not allow an unknown package",
			rules: func(r map[string]rule) { m := r["engine"]; m.allow = []string{"model", "modle"}; r["engine"] = m },
			want:  []string{"engine may import modle, which has no row"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rules := map[string]rule{}
			for k, v := range base {
				v.allow = slices.Clone(v.allow)
				rules[k] = v
			}
			g := clean()
			if tc.rules != nil {
				tc.rules(rules)
			}
			if tc.graph != nil {
				tc.graph(g)
			}
			got := check(rules, g)
			if len(tc.want) == 0 && len(got) > 0 {
				t.Fatalf("want no violation, got:\n%s", strings.Join(got, "\n"))
			}
			for _, w := range tc.want {
				if !slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, w) }) {
					t.Errorf("want a violation containing %q, got:\n%s", w, strings.Join(got, "\n"))
				}
			}
		})
	}
}

func TestParseRulesErrors(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"no table", "# nothing\n", "no table starting"},
		{"unknown role", tableHeader + " job |\n|---|---|---|---|\n| `a` | service | — | x |\n", `a: unknown role "service"`},
		{"bare name", tableHeader + " job |\n|---|---|---|---|\n| `a` | component | b | x |\n", `"b" is not a ` + "`package`"},
		{"second row", tableHeader + " job |\n|---|---|---|---|\n| `a` | leaf | — | x |\n| `a` | leaf | — | y |\n", "a has a second row"},
		{"second table", tableHeader + "\n|---|\n\n" + tableHeader + "\n", "a second rules table"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseRules(tc.doc)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error containing %q, got %v", tc.want, err)
			}
		})
	}
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func list(names []string) string {
	if len(names) == 0 {
		return "nothing"
	}
	return strings.Join(names, ", ")
}
