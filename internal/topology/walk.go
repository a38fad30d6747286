package topology

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// A Walker checks a YAML document node by node and collects every problem
// it finds as a *FieldError located by its field path (e.g.
// "steps[1].args.region"), so that one run names them all.
// Topology files are walked along the Topology type (Check); the custom
// drill scenarios of package fault walk their own shape with Fields,
// Scalar, List and Duration.
type Walker struct {
	// Errs holds the problems found so far, in the order found.
	Errs []error
}

// ParseDocument parses b as one YAML document and returns its root node. A
// syntax error or an empty document is a *FieldError at "(file)"; what
// names the document in the latter ("topology", "scenario").
func ParseDocument(b []byte, what string) (*yaml.Node, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, &FieldError{Path: fileLevel, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(root.Content) == 0 {
		return nil, &FieldError{Path: fileLevel, Msg: "empty " + what}
	}
	return root.Content[0], nil
}

// fileLevel is the path of a problem of the document as a whole.
const fileLevel = "(file)"

// Add records a problem at path ("" is the document itself).
func (w *Walker) Add(path, format string, args ...any) {
	if path == "" {
		path = fileLevel
	}
	w.Errs = append(w.Errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Err returns the problems found, joined; nil when there are none.
func (w *Walker) Err() error { return errors.Join(w.Errs...) }

// FieldPath is the path of field inside the value at path.
func FieldPath(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// Fields checks that n is a mapping whose keys are all known and returns
// its value nodes by key (empty when n is not a mapping).
func (w *Walker) Fields(path string, n *yaml.Node, known ...string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		w.Add(path, "want a mapping (line %d)", n.Line)
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !w.known(path, k, known) {
			continue
		}
		out[k.Value] = v
	}
	return out
}

// known reports whether key k is one of known, and records a problem (with
// a hint when only the case differs) when it is not.
func (w *Walker) known(path string, k *yaml.Node, known []string) bool {
	for _, f := range known {
		if f == k.Value {
			return true
		}
	}
	hint := ""
	for _, f := range known {
		if strings.EqualFold(f, k.Value) {
			hint = fmt.Sprintf("; did you mean %q?", f)
		}
	}
	w.Add(FieldPath(path, k.Value), "unknown field (line %d)%s; fields: %s", k.Line, hint, strings.Join(known, ", "))
	return false
}

// Scalar returns the value of a scalar node; a nil n (an absent field)
// returns false without a problem.
func (w *Walker) Scalar(path string, n *yaml.Node) (string, bool) {
	if n == nil {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		w.Add(path, "want a single value (line %d)", n.Line)
		return "", false
	}
	return n.Value, true
}

// List returns the items of a sequence node; a nil n returns nil without a
// problem.
func (w *Walker) List(path string, n *yaml.Node) []*yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		w.Add(path, "want a list (line %d)", n.Line)
		return nil
	}
	return n.Content
}

// Duration reads a non-negative duration (see ParseDuration).
func (w *Walker) Duration(path string, n *yaml.Node) (Duration, bool) {
	v, ok := w.Scalar(path, n)
	if !ok {
		return 0, false
	}
	d, err := ParseDuration(v)
	if err != nil {
		w.Add(path, "%v", err)
		return 0, false
	}
	if d < 0 {
		w.Add(path, "must not be negative, got %s", d)
		return 0, false
	}
	return d, true
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// Check walks n along the Go type t it decodes into and records every key
// that names no field, every node of the wrong shape (a list where a
// mapping belongs) and every value that does not decode (a word where a
// number or a duration belongs), each with its path.
func (w *Walker) Check(path string, n *yaml.Node, t reflect.Type) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // decodes to the zero value
	}
	custom := reflect.PointerTo(t).Implements(unmarshalerType)
	switch k := t.Kind(); {
	case custom && !(k == reflect.Struct && n.Kind == yaml.MappingNode),
		k >= reflect.Bool && k <= reflect.Float64 || k == reflect.String:
		// A leaf: decode it alone, so that a bad value is named by its path.
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			var te *yaml.TypeError
			if errors.As(err, &te) {
				w.Add(path, "%s", strings.Join(te.Errors, "; "))
			} else {
				w.Add(path, "%v", err)
			}
		}
	case k == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.Add(path, "want a mapping (line %d)", n.Line)
			return
		}
		var names []string
		fields := map[string]reflect.Type{}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name != "" && name != "-" {
				names = append(names, name)
				fields[name] = f.Type
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if w.known(path, k, names) {
				w.Check(FieldPath(path, k.Value), v, fields[k.Value])
			}
		}
	case k == reflect.Slice:
		for i, c := range w.List(path, n) {
			w.Check(fmt.Sprintf("%s[%d]", path, i), c, t.Elem())
		}
	case k == reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.Add(path, "want a mapping (line %d)", n.Line)
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			w.Check(fmt.Sprintf("%s[%q]", path, n.Content[i].Value), n.Content[i+1], t.Elem())
		}
	}
}

var labelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// IsLabel reports whether s is a lower-case DNS label (a-z, 0-9, '-'), as
// every name in a topology, and a custom scenario's, must be.
func IsLabel(s string) bool { return labelRE.MatchString(s) }
