package e2e

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// TestReadme keeps the README honest: it starts with the run and test
// commands, and every geostamp command it shows exists.
func TestReadme(t *testing.T) {
	f, err := os.Open("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []string
	var cmds [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "$ "))
		if strings.HasPrefix(line, "go run ./cmd/geostamp ") || strings.HasPrefix(line, "go test ") {
			blocks = append(blocks, line)
		}
		if rest, ok := strings.CutPrefix(line, "./geostamp "); ok {
			if i := strings.Index(rest, "#"); i >= 0 {
				rest = rest[:i]
			}
			cmds = append(cmds, strings.Fields(rest))
		}
	}
	if len(blocks) < 2 || blocks[0] != "go run ./cmd/geostamp up" || !strings.HasPrefix(blocks[1], "go test ") {
		t.Fatalf("README must start with the run command and then the test command; found %q", blocks)
	}
	if b, err := os.ReadFile("../.ci/run"); err != nil || !strings.Contains(string(b), "\n"+blocks[1]+"\n") {
		t.Fatalf(".ci/run does not run the README's test command %q", blocks[1])
	}
	if len(cmds) < 5 {
		t.Fatalf("README shows only %d geostamp commands", len(cmds))
	}
	for _, c := range cmds {
		if _, errOut, code := cli(t, c[0], "-h"); code != 0 {
			t.Errorf("README shows `geostamp %s`, but `geostamp %s -h` exits %d: %s", strings.Join(c, " "), c[0], code, errOut)
		}
	}
}
