// Package deploy holds what an operator deploys beside geostamp: the
// Prometheus rules (prometheus/) and the Grafana dashboard (grafana/).
//
// The rules depend on the topology's objectives (the availability target
// behind the burn-rate alerts, the RPO behind the lag alert), so they are
// templates, embedded here, that `geostamp up` renders for its topology into
// DIR/prometheus/rules/ (internal/lab). prometheus/rules/ holds their
// rendering for the embedded default topology, checked against the
// templates by a test so that the two never drift; prometheus/tests/ are
// promtool unit tests over that rendering. See docs/observability.md.
package deploy

import (
	"embed"
	"io/fs"
)

//go:embed prometheus/templates/*.yml.tmpl
var templates embed.FS

// RuleTemplates are the Prometheus rule file templates, named NAME.yml.tmpl
// for the rule file NAME.yml they render. Their actions use the delimiters
// TemplateLeft and TemplateRight, since Prometheus's own annotation
// templates take {{ }}.
func RuleTemplates() fs.FS {
	sub, err := fs.Sub(templates, "prometheus/templates")
	if err != nil {
		panic(err) // the embedded directory exists: a build-time fact
	}
	return sub
}

// Delimiters of the rule templates' actions.
const (
	TemplateLeft  = "<<"
	TemplateRight = ">>"
)
