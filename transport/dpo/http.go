package dpo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/efm-go/efm/transport"
)

type netDialer struct{ timeout time.Duration }

func (d *netDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return (&net.Dialer{Timeout: d.timeout, KeepAlive: 30 * time.Second}).DialContext(ctx, network, addr)
}

type invalidator interface{ Invalidate(scopes ...string) }

// call does a JSON round trip; body may be nil, out may be nil.
func (c *Client) call(ctx context.Context, op, method, path string, q url.Values, scope string,
	body io.ReadSeeker, contentType string, out any) error {
	open := func() (io.Reader, int64, error) {
		if body == nil {
			return nil, 0, nil
		}
		n, err := body.Seek(0, io.SeekEnd)
		if err != nil {
			return nil, 0, err
		}
		_, err = body.Seek(0, io.SeekStart)
		return body, n, err
	}
	resp, cancel, err := c.doBody(ctx, op, method, path, q, scope, open, contentType, true)
	if err != nil {
		return err
	}
	defer cancel()
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(out); err != nil {
		return fmt.Errorf("%s: decoding answer: %w", op, errors.Join(transport.ErrMalformed, err))
	}
	return nil
}

// callStream uploads a broker file, streaming the package.
func (c *Client) callStream(ctx context.Context, op, method, path, scope string, f *brokerFile) error {
	open := func() (io.Reader, int64, error) {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(f.write(pw, f.payload)) }()
		return pr, f.length, nil
	}
	resp, cancel, err := c.doBody(ctx, op, method, path, nil, scope, open, "application/octet-stream", false)
	if err != nil {
		return err
	}
	defer cancel()
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return nil
}

func (c *Client) do(ctx context.Context, op, method, path string, q url.Values, scope string,
	body io.Reader, bounded bool) (*http.Response, context.CancelFunc, error) {
	return c.doBody(ctx, op, method, path, q, scope, func() (io.Reader, int64, error) { return body, -1, nil }, "", bounded)
}

// doBody sends a request with a fresh token, tries once more with a new
// token after a 401, and turns non-2xx answers into *transport.StatusError.
// bounded calls get RequestTimeout; streams only their caller's deadline.
// The returned cancel must be called after the body is read.
func (c *Client) doBody(ctx context.Context, op, method, path string, q url.Values, scope string,
	open func() (io.Reader, int64, error), contentType string, bounded bool) (*http.Response, context.CancelFunc, error) {
	u := *c.base
	u.Path += path
	u.RawQuery = q.Encode()
	for attempt := 0; ; attempt++ {
		token, err := c.cfg.Tokens.Token(ctx, scope)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: getting altinn token: %w", op, err)
		}
		body, n, err := open()
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", op, err)
		}
		cctx, cancel := ctx, context.CancelFunc(func() {})
		if bounded {
			cctx, cancel = context.WithTimeout(ctx, c.cfg.RequestTimeout)
		}
		req, err := http.NewRequestWithContext(cctx, method, u.String(), body)
		if err != nil {
			cancel()
			return nil, nil, fmt.Errorf("%s: %w", op, err)
		}
		if n >= 0 && body != nil {
			req.ContentLength = n
			req.Header.Set("Content-Length", strconv.FormatInt(n, 10))
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Accept", "application/json")
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := c.cfg.HTTPClient.Do(req)
		if err != nil {
			cancel()
			return nil, nil, fmt.Errorf("%s: %w", op, err)
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return resp, cancel, nil
		}
		se := statusError(op, resp)
		resp.Body.Close()
		cancel()
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			if inv, ok := c.cfg.Tokens.(invalidator); ok {
				inv.Invalidate(scope)
				continue
			}
		}
		return nil, nil, se
	}
}

func statusError(op string, resp *http.Response) *transport.StatusError {
	se := &transport.StatusError{Op: op, StatusCode: resp.StatusCode}
	var p transport.Problem
	if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&p) == nil {
		se.Title, se.Detail = p.Title, p.Detail
	}
	return se
}
