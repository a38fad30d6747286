package frontdoor

import (
	"encoding/hex"
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// accessLog writes one JSON object per request, one line each:
//
//	{"time":"2026-01-02T15:04:05.123456Z","level":"INFO","msg":"request","component":"access",
//	 "pop":"pop-eu","client":"10.1.2.3",
//	 "method":"GET","host":"app","uri":"/orders/1","proto":"HTTP/1.1","status":200,
//	 "region":"westeurope","tries":["northeurope:connect_error","westeurope:200"],
//	 "bytes":123,"duration_ms":1.234,"fail_open":false}
//
// with "reason" when the front door answered itself, and "trace_id" and
// "span_id" (the server span's, sampled or not) when it traces. The time is the
// request's start; level, msg and component make it a log line like the
// others (geostamp logs merges them); region is the region that answered,
// "global" (the global layer) when none did.
type accessLog struct {
	mu  sync.Mutex
	w   io.Writer
	pop string
}

var logBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (l *accessLog) write(f *FrontDoor, in *inbound, rec *record) {
	bp := logBufPool.Get().(*[]byte)
	b := (*bp)[:0]
	now := time.Now()
	b = append(b, `{"time":"`...)
	b = rec.start.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
	b = append(b, `","level":"INFO","msg":"request","component":"access","pop":`...)
	b = appendJSON(b, l.pop)
	b = append(b, `,"client":"`...)
	if rec.client.IsValid() {
		b = rec.client.AppendTo(b)
	}
	b = append(b, `","method":`...)
	b = appendJSON(b, in.method)
	b = append(b, `,"host":`...)
	b = appendJSON(b, in.host)
	b = append(b, `,"uri":`...)
	b = appendJSON(b, in.target)
	b = append(b, `,"proto":"`...)
	switch {
	case in.http10:
		b = append(b, "HTTP/1.0"...)
	default:
		b = append(b, "HTTP/1.1"...)
	}
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(rec.status), 10)
	b = append(b, `,"region":`...)
	if rec.region >= 0 {
		b = appendJSON(b, f.origins[rec.region].name)
	} else {
		b = append(b, `"global"`...)
	}
	b = append(b, `,"tries":[`...)
	for i := 0; i < rec.ntries; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		t := rec.tries[i]
		b = append(b, '"')
		b = append(b, f.origins[t.region].name...)
		b = append(b, ':')
		if t.outcome != "" {
			b = append(b, t.outcome...)
		} else {
			b = strconv.AppendInt(b, int64(t.status), 10)
		}
		b = append(b, '"')
	}
	b = append(b, `],"bytes":`...)
	b = strconv.AppendInt(b, rec.bytes, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(now.Sub(rec.start).Microseconds())/1000, 'f', 3, 64)
	b = append(b, `,"fail_open":`...)
	b = strconv.AppendBool(b, rec.failOpen)
	if rec.reason != "" {
		b = append(b, `,"reason":`...)
		b = appendJSON(b, rec.reason)
	}
	if rec.trace.span != nil {
		sc := rec.trace.span.SpanContext()
		tid, sid := sc.TraceID(), sc.SpanID()
		b = append(b, `,"trace_id":"`...)
		b = hex.AppendEncode(b, tid[:])
		b = append(b, `","span_id":"`...)
		b = hex.AppendEncode(b, sid[:])
		b = append(b, '"')
	}
	b = append(b, "}\n"...)
	l.mu.Lock()
	l.w.Write(b)
	l.mu.Unlock()
	*bp = b
	logBufPool.Put(bp)
}

// appendJSON appends s as a JSON string.
func appendJSON(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < ' ' || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
