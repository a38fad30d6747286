package frontdoor

import (
	"fmt"
	"net/netip"
	"strconv"

	"github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/types"
)

// WAF modes (topology frontdoor.waf.mode).
const (
	WAFOff        = "off"
	WAFDetection  = "detection"
	WAFPrevention = "prevention"
)

// waf inspects request heads and bodies with Coraza and the OWASP Core
// Rule Set (paranoia level 1, anomaly scoring). The rule engine always runs
// in blocking mode; in detection mode the front door only counts and logs
// what it would have blocked. Responses are not inspected. Bodies are
// inspected up to the replay limit (a longer body is inspected by its
// beginning). With mode off no WAF is built and requests skip it.
type waf struct {
	prevent bool
	w       coraza.WAF
}

// wafDirectives: Coraza's recommended configuration and the CRS, with the
// engine on, no audit log file and no response body access.
const wafDirectives = `
Include @coraza.conf-recommended
Include @crs-setup.conf.example
Include @owasp_crs/*.conf
SecRuleEngine On
SecAuditEngine Off
SecResponseBodyAccess Off
`

func newWAF(mode string) (*waf, error) {
	switch mode {
	case WAFOff, "":
		return nil, nil
	case WAFDetection, WAFPrevention:
	default:
		return nil, fmt.Errorf("unknown WAF mode %q (off, detection, prevention)", mode)
	}
	w, err := coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(coreruleset.FS).WithDirectives(wafDirectives))
	if err != nil {
		return nil, fmt.Errorf("WAF: %w", err)
	}
	return &waf{prevent: mode == WAFPrevention, w: w}, nil
}

// inspect runs the request phases of the rules; it returns the
// interruption (nil: the request passes).
func (w *waf) inspect(in *inbound, client netip.Addr, body []byte) *types.Interruption {
	tx := w.w.NewTransaction()
	defer func() {
		tx.ProcessLogging()
		tx.Close()
	}()
	addr := ""
	if client.IsValid() {
		addr = client.String()
	}
	tx.ProcessConnection(addr, 0, "", 0)
	proto := "HTTP/1.1"
	if in.http10 {
		proto = "HTTP/1.0"
	}
	tx.ProcessURI(in.target, in.method, proto)
	if in.host != "" {
		tx.AddRequestHeader("Host", in.host)
		tx.SetServerName(in.host)
	}
	for _, fl := range in.fields {
		tx.AddRequestHeader(fl.name, fl.value)
	}
	if len(body) > 0 {
		tx.AddRequestHeader("Content-Length", strconv.Itoa(len(body)))
	}
	if it := tx.ProcessRequestHeaders(); it != nil {
		return it
	}
	if len(body) > 0 && tx.IsRequestBodyAccessible() {
		if it, _, err := tx.WriteRequestBody(body); it != nil || err != nil {
			return it
		}
	}
	it, _ := tx.ProcessRequestBody()
	return it
}
