package topology

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

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
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, &FieldError{Path: "(file)", Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(root.Content) == 0 {
		return nil, &FieldError{Path: "(file)", Msg: "empty topology"}
	}
	var p problems
	checkFields(&p, "", root.Content[0], reflect.TypeOf(Topology{}))
	var t Topology
	if err := root.Content[0].Decode(&t); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, m := range te.Errors {
				p.add("(file)", "%s", m)
			}
		} else {
			p.add("(file)", "%v", err)
		}
	}
	// Validate what did decode too, so that one run names every problem.
	t.SetDefaults()
	if err := t.Validate(); err != nil {
		p = append(p, err)
	}
	if len(p) > 0 {
		return nil, errors.Join(p...)
	}
	return &t, nil
}

// checkFields walks a YAML node along the Go type it decodes into and
// reports every mapping key that names no field, with its path.
func checkFields(p *problems, path string, n *yaml.Node, t reflect.Type) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode || reflect.PointerTo(t).Implements(reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()) {
			return
		}
		fields := map[string]reflect.Type{}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name != "" && name != "-" {
				fields[name] = f.Type
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			at := join(path, k.Value)
			ft, ok := fields[k.Value]
			if !ok {
				p.add(at, "unknown field (line %d)%s", k.Line, suggest(k.Value, fields))
				continue
			}
			checkFields(p, at, v, ft)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, c := range n.Content {
			checkFields(p, fmt.Sprintf("%s[%d]", path, i), c, t.Elem())
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			checkFields(p, fmt.Sprintf("%s[%q]", path, n.Content[i].Value), n.Content[i+1], t.Elem())
		}
	}
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// suggest names a known field that differs from the unknown one only in case.
func suggest(name string, fields map[string]reflect.Type) string {
	for f := range fields {
		if strings.EqualFold(f, name) {
			return fmt.Sprintf("; did you mean %q?", f)
		}
	}
	return ""
}

// Marshal writes a topology as YAML.
func Marshal(t *Topology) ([]byte, error) { return yaml.Marshal(t) }
