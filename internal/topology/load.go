package topology

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"reflect"

	"go.yaml.in/yaml/v3"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the embedded default topology file.
func DefaultYAML() []byte { return append([]byte(nil), defaultYAML...) }

// Default returns the embedded default topology with defaults filled in.
func Default() *Topology {
	t, err := Parse(defaultYAML)
	if err != nil {
		panic("topology: embedded default is invalid: " + err.Error())
	}
	return t
}

// Load reads, defaults and validates the topology file at path; an empty path
// means the embedded default.
func Load(path string) (*Topology, error) {
	if path == "" {
		return Parse(defaultYAML)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	t, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("topology %s: %w", path, err)
	}
	return t, nil
}

// Parse decodes a topology file, rejects unknown fields, fills defaults and
// validates. Every problem found is returned at once as joined *FieldErrors.
func Parse(b []byte) (*Topology, error) {
	root, err := ParseDocument(b, "topology")
	if err != nil {
		return nil, err
	}
	var w Walker
	w.Check("", root, reflect.TypeFor[Topology]())
	var t Topology
	// The walker names each decoding problem with its path; the decoder's
	// own (pathless) errors are only reported when the walker found none.
	if err := root.Decode(&t); err != nil && len(w.Errs) == 0 {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, m := range te.Errors {
				w.Add("", "%s", m)
			}
		} else {
			w.Add("", "%v", err)
		}
	}
	// Validate what did decode too, so that one run names every problem.
	t.SetDefaults()
	if err := t.Validate(); err != nil {
		w.Errs = append(w.Errs, err)
	}
	if err := w.Err(); err != nil {
		return nil, err
	}
	return &t, nil
}

// Marshal writes a topology as YAML.
func Marshal(t *Topology) ([]byte, error) { return yaml.Marshal(t) }
