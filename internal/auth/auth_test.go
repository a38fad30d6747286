package auth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/geostamp/geostamp/internal/httpjson"
)

func TestBearer(t *testing.T) {
	const secret = "s3cret-token"
	tests := []struct {
		name   string
		token  string // configured
		header string // Authorization; "" sends none
		ok     bool
	}{
		{"right token", secret, "Bearer " + secret, true},
		{"scheme in another case, spaces around", secret, "  bearer   " + secret + " ", true},
		{"configured token with a newline from its file", secret + "\n", "Bearer " + secret, true},
		{"missing header", secret, "", false},
		{"wrong scheme", secret, "Basic " + secret, false},
		{"scheme only", secret, "Bearer", false},
		{"token without scheme", secret, secret, false},
		{"wrong token", secret, "Bearer wrong", false},
		{"prefix of the token", secret, "Bearer " + secret[:4], false},
		{"token with a suffix", secret, "Bearer " + secret + "x", false},
		{"empty configured token, empty credential", "", "Bearer ", false},
		{"empty configured token, no header", "", "", false},
		{"blank configured token", "  ", "Bearer   ", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			served := false
			h := Bearer(tc.token, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				served = true
				w.WriteHeader(http.StatusNoContent)
			}))
			req := httptest.NewRequest(http.MethodGet, "/admin/status", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if tc.ok {
				if !served || rec.Code != http.StatusNoContent {
					t.Fatalf("served %v, code %d; want the request served", served, rec.Code)
				}
				return
			}
			if served {
				t.Fatal("request served without a valid token")
			}
			if rec.Code != http.StatusUnauthorized {
				t.Errorf("code %d, want 401", rec.Code)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != `Bearer realm="geostamp"` {
				t.Errorf("WWW-Authenticate %q", got)
			}
			var e httpjson.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error != "missing or wrong bearer token" {
				t.Errorf("body %q (%v)", rec.Body, err)
			}
		})
	}
}

func TestReadTokenFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if tok, err := ReadTokenFile(write("ok", "  abc123\n")); err != nil || tok != "abc123" {
		t.Errorf("token %q, %v; want abc123", tok, err)
	}
	if _, err := ReadTokenFile(write("blank", " \n")); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("blank file: %v, want an error saying it is empty", err)
	}
	if _, err := ReadTokenFile(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
}
