package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/geostamp/geostamp/internal/auth"
	"github.com/geostamp/geostamp/internal/httpjson"
)

// Client talks to a running lab's control API.
type Client struct {
	Endpoints *Endpoints
	token     string
	http      *http.Client
}

// Dial reads DIR/endpoints.json and the token it names.
func Dial(dir string) (*Client, error) {
	eps, err := ReadEndpoints(dir)
	if err != nil {
		return nil, err
	}
	tok, err := auth.ReadTokenFile(eps.TokenFile)
	if err != nil {
		return nil, err
	}
	return &Client{Endpoints: eps, token: tok, http: &http.Client{Timeout: 60 * time.Second}}, nil
}

// Token returns the control API's bearer token.
func (c *Client) Token() string { return c.token }

// Do sends a request to the control API; body and out may be nil. A non-2xx
// answer becomes an error carrying the API's message.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Endpoints.Control+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("control API: %w (is `geostamp up` still running?)", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		if msg := httpjson.ErrorMessage(b); msg != "" {
			return errors.New(msg)
		}
		return fmt.Errorf("control API: %s", resp.Status)
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = b
		return nil
	}
	return json.Unmarshal(b, out)
}
