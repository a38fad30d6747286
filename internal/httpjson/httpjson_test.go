package httpjson

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name     string
		write    func(http.ResponseWriter)
		code     int
		body     string
		errorMsg string
	}{
		{"value", func(w http.ResponseWriter) { Write(w, http.StatusOK, map[string]int{"a": 1}) }, 200, "{\n  \"a\": 1\n}\n", ""},
		{"error", func(w http.ResponseWriter) { Error(w, http.StatusNotFound, "no such region") }, 404, "", "no such region"},
		{"unencodable", func(w http.ResponseWriter) { Write(w, http.StatusOK, math.Inf(1)) }, 500, "", "internal error: cannot encode the answer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tc.write(rec)
			if rec.Code != tc.code {
				t.Errorf("code %d, want %d", rec.Code, tc.code)
			}
			h := rec.Header()
			if h.Get("Content-Type") != "application/json" || h.Get("Cache-Control") != "no-store" || h.Get("Content-Length") != strconv.Itoa(rec.Body.Len()) {
				t.Errorf("headers %v for a body of %d bytes", h, rec.Body.Len())
			}
			if tc.body != "" && rec.Body.String() != tc.body {
				t.Errorf("body %q, want %q", rec.Body, tc.body)
			}
			if tc.errorMsg != "" {
				var e ErrorBody
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error != tc.errorMsg {
					t.Errorf("body %q: error %q (%v), want %q", rec.Body, e.Error, err, tc.errorMsg)
				}
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	rec := httptest.NewRecorder()
	Error(rec, http.StatusConflict, "region is frozen")
	for _, tc := range []struct{ body, want string }{
		{rec.Body.String(), "region is frozen"},
		{`{"error": 5}`, ""},
		{`{"status": "ok"}`, ""},
		{"502 Bad Gateway", ""},
	} {
		if got := ErrorMessage([]byte(tc.body)); got != tc.want {
			t.Errorf("ErrorMessage(%q) = %q, want %q", tc.body, got, tc.want)
		}
	}
}
