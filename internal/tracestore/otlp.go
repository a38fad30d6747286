package tracestore

import (
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// ReceivePath is the OTLP/HTTP path of trace exports.
const ReceivePath = "/v1/traces"

// maxExport bounds one export request's body (decompressed).
const maxExport = 16 << 20

// Receiver returns the OTLP/HTTP trace receiver of s: POST /v1/traces with
// an ExportTraceServiceRequest in binary protobuf
// (application/x-protobuf), optionally gzip-encoded, as the OpenTelemetry
// SDKs send with OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf. JSON is
// refused with 415.
func (s *Store) Receiver() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+ReceivePath, func(w http.ResponseWriter, r *http.Request) {
		if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/x-protobuf") {
			http.Error(w, "only application/x-protobuf is accepted", http.StatusUnsupportedMediaType)
			return
		}
		var body io.Reader = r.Body
		if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
			gz, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, "bad gzip body: "+err.Error(), http.StatusBadRequest)
				return
			}
			defer gz.Close()
			body = gz
		}
		b, err := io.ReadAll(io.LimitReader(body, maxExport+1))
		if err != nil {
			http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if len(b) > maxExport {
			http.Error(w, "export too large", http.StatusRequestEntityTooLarge)
			return
		}
		var req coltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			http.Error(w, "bad ExportTraceServiceRequest: "+err.Error(), http.StatusBadRequest)
			return
		}
		s.Add(Decode(&req))
		out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	})
	return mux
}

// Decode flattens an OTLP export into spans. Spans with an invalid trace
// or span id are left out.
func Decode(req *coltrace.ExportTraceServiceRequest) []Span {
	var out []Span
	for _, rs := range req.GetResourceSpans() {
		res := attrMap(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			component := ss.GetScope().GetName()
			if i := strings.LastIndexByte(component, '/'); i >= 0 {
				component = component[i+1:]
			}
			for _, sp := range ss.GetSpans() {
				if len(sp.GetTraceId()) != 16 || len(sp.GetSpanId()) != 8 {
					continue
				}
				attrs := attrMap(sp.GetAttributes())
				s := Span{
					TraceID:    hex.EncodeToString(sp.GetTraceId()),
					SpanID:     hex.EncodeToString(sp.GetSpanId()),
					Name:       sp.GetName(),
					Kind:       kindName(sp.GetKind()),
					Service:    res["service.name"],
					Component:  component,
					Region:     first(attrs["geostamp.region"], res["geostamp.region"]),
					POP:        first(attrs["geostamp.pop"], res["geostamp.pop"]),
					Start:      time.Unix(0, int64(sp.GetStartTimeUnixNano())).UTC(),
					End:        time.Unix(0, int64(sp.GetEndTimeUnixNano())).UTC(),
					Attributes: attrs,
				}
				if c := attrs["geostamp.component"]; c != "" {
					s.Component = c
				}
				if len(sp.GetParentSpanId()) == 8 {
					s.ParentID = hex.EncodeToString(sp.GetParentSpanId())
				}
				s.Duration = ms(s.End.Sub(s.Start))
				if st := sp.GetStatus(); st.GetCode() == tracepb.Status_STATUS_CODE_ERROR {
					s.Error = first(st.GetMessage(), "error")
				}
				out = append(out, s)
			}
		}
	}
	return out
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func kindName(k tracepb.Span_SpanKind) string {
	switch k {
	case tracepb.Span_SPAN_KIND_SERVER:
		return "server"
	case tracepb.Span_SPAN_KIND_CLIENT:
		return "client"
	case tracepb.Span_SPAN_KIND_PRODUCER:
		return "producer"
	case tracepb.Span_SPAN_KIND_CONSUMER:
		return "consumer"
	case tracepb.Span_SPAN_KIND_INTERNAL:
		return "internal"
	}
	return ""
}

func attrMap(kvs []*common.KeyValue) map[string]string {
	if len(kvs) == 0 {
		return nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = valueString(kv.GetValue())
	}
	return m
}

func valueString(v *common.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *common.AnyValue_StringValue:
		return x.StringValue
	case *common.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *common.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *common.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
	case *common.AnyValue_ArrayValue:
		parts := make([]string, 0, len(x.ArrayValue.GetValues()))
		for _, e := range x.ArrayValue.GetValues() {
			parts = append(parts, valueString(e))
		}
		return "[" + strings.Join(parts, ",") + "]"
	case *common.AnyValue_BytesValue:
		return hex.EncodeToString(x.BytesValue)
	case nil:
		return ""
	}
	return fmt.Sprint(v.GetValue())
}
