// Package httpjson writes the JSON answers of every HTTP API in geostamp:
// the control API, the region, POP and GSLB admin APIs and the sample
// workload. One function sets the headers and the encoding, so that every
// surface answers alike.
package httpjson

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Write answers code with v as indented JSON and a trailing newline. The
// answer describes live state, so it is marked no-store. A v that cannot be
// encoded (a bug) becomes a 500 with an error body instead of half an answer.
func Write(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error": "internal error: cannot encode the answer"}`)
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(b)
}

// ErrorBody is the body of every error answer: {"error": "..."}.
type ErrorBody struct {
	Error string `json:"error"`
}

// Error answers code with {"error": msg}.
func Error(w http.ResponseWriter, code int, msg string) {
	Write(w, code, ErrorBody{Error: msg})
}

// ErrorMessage returns the message of an error answer's body, "" when the
// body is not {"error": "..."}: what a client shows of a failed request.
func ErrorMessage(body []byte) string {
	var e ErrorBody
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	return e.Error
}
