// Package auth is the one bearer-token check of every admin surface: the
// lab's control API, the region admin API, the POP admin API and the GSLB
// admin API. (Tokens with roles and an audit log would belong here too;
// today there is one token per surface.)
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/geostamp/geostamp/internal/httpjson"
)

// Realm is the realm named in the WWW-Authenticate challenge.
const Realm = "geostamp"

// Valid reports whether r carries "Authorization: Bearer <token>". The
// scheme is case-insensitive (RFC 9110 §11.1) and spaces around the
// credentials are ignored. An empty (or all-space) token is never valid,
// so a surface whose token was not configured refuses everyone instead of
// accepting an empty credential.
func Valid(r *http.Request, token string) bool {
	token = strings.TrimSpace(token)
	if token == "" {
		return false
	}
	scheme, cred, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	// Hashing first makes the comparison take the same time whatever the
	// length of the presented credential.
	got, want := sha256.Sum256([]byte(strings.TrimSpace(cred))), sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// Bearer serves next only to requests that are Valid for token; others get
// 401 with a WWW-Authenticate challenge and a JSON error body.
func Bearer(token string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !Valid(r, token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+Realm+`"`)
			httpjson.Error(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ReadTokenFile reads a bearer token from the file at path, without the
// spaces and newline around it. An empty file is an error: a surface must
// not start with a token that Valid would never accept.
func ReadTokenFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("auth: token: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("auth: token file %s is empty", path)
	}
	return t, nil
}
