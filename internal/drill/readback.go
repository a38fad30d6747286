package drill

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// readbackPage is the number of orders asked per page.
const readbackPage = 1000

// ReadBack reads every write of keys back from every region: each region's
// replica is listed directly at its ingress (Targets.Regions), from
// position after, and one Readback record per key and region is written. A
// region that cannot be listed gets records with Error (they count neither
// way). Without region addresses the listing goes through the front door
// and is attributed to the region that served it.
func (g *LoadGenerator) ReadBack(ctx context.Context, keys []string, after uint64) error {
	type source struct{ region, base, fdid string }
	var sources []source
	for r, base := range g.tg.Regions {
		sources = append(sources, source{r, base, g.tg.FDID})
	}
	sort.Slice(sources, func(i, j int) bool { return sources[i].region < sources[j].region })
	if len(sources) == 0 {
		sources = []source{{"", g.tg.FrontDoor, ""}}
	}
	c := g.clients[g.cfg.Streams[0]]
	if len(g.tg.Regions) > 0 {
		c = &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: g.cfg.Timeout}
		defer c.CloseIdleConnections()
	}
	for _, s := range sources {
		found, region, err := g.list(ctx, c, s.base, s.fdid, after)
		if s.region != "" {
			region = s.region
		}
		if region == "" {
			region = noRegion
		}
		t := g.clock.now()
		for _, k := range keys {
			rb := Readback{T: t, Region: region, Key: k, Service: g.cfg.Service, Found: found[k]}
			if err != nil {
				rb.Found, rb.Error = false, err.Error()
			}
			if werr := g.w.Write(&rb); werr != nil {
				return werr
			}
		}
	}
	return nil
}

// list returns the run's keys present in the replica behind base, and the
// region that served the listing.
func (g *LoadGenerator) list(ctx context.Context, c *http.Client, base, fdid string, after uint64) (map[string]bool, string, error) {
	prefix := g.KeyPrefix()
	found := map[string]bool{}
	region := ""
	for page := 0; ; page++ {
		if page > 1_000_000 {
			return nil, region, fmt.Errorf("readback from %s: more than a billion orders", base)
		}
		rctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
		req, err := http.NewRequestWithContext(rctx, http.MethodGet, base+"/orders?after="+strconv.FormatUint(after, 10)+"&limit="+strconv.Itoa(readbackPage), nil)
		if err != nil {
			cancel()
			return nil, region, err
		}
		if fdid != "" {
			req.Header.Set(HeaderFDID, fdid)
		}
		resp, err := c.Do(req)
		if err != nil {
			cancel()
			return nil, region, fmt.Errorf("readback: %s", shortError(err))
		}
		var body struct {
			Orders []struct {
				Item string `json:"item"`
				Seq  uint64 `json:"seq"`
			} `json:"orders"`
			Next uint64 `json:"next"`
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		cancel()
		r := resp.Header.Get(HeaderRegion)
		switch {
		case err != nil:
			return nil, region, fmt.Errorf("readback: %s", shortError(err))
		case resp.StatusCode != http.StatusOK:
			return nil, region, fmt.Errorf("readback: %s: %s", resp.Status, excerpt(b))
		case region != "" && r != region:
			return nil, region, fmt.Errorf("readback: the listing moved from %s to %s", region, r)
		}
		region = r
		if err := json.Unmarshal(b, &body); err != nil {
			return nil, region, fmt.Errorf("readback: %w", err)
		}
		if len(body.Orders) == 0 || body.Next <= after {
			return found, region, nil
		}
		for _, o := range body.Orders {
			if strings.HasPrefix(o.Item, prefix) {
				found[o.Item] = true
			}
		}
		after = body.Next
		if ctx.Err() != nil {
			return nil, region, ctx.Err()
		}
	}
}
