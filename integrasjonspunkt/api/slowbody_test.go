package api_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSlowBodiesAreCutOff: clients that trickle or stall a request body lose
// their connection after one window, with a 408; a fast upload under the
// same settings goes through (issue 14, point 3).
func TestSlowBodiesAreCutOff(t *testing.T) {
	d := startDaemon(t, map[string]string{"efm.http.body-window": "1s", "efm.http.body-min-rate": "16KB"})
	u, err := url.Parse(d.base)
	require.NoError(t, err)

	// trickle opens a one-step send of 1 MB and sends its body a few bytes
	// at a time (or not at all), and returns what the server answered
	// before it closed the connection.
	trickle := func(chunk int) (string, error) {
		c, err := net.Dial("tcp", u.Host)
		if err != nil {
			return "", err
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /api/messages/out/multipart HTTP/1.1\r\nHost: %s\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 1048576\r\n\r\n", u.Host)
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for chunk > 0 {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := c.Write(bytes.Repeat([]byte("a"), chunk)); err != nil {
					return
				}
			}
		}()
		// Far longer than the window: a connection still open by then is
		// held by the slow client.
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		b, err := io.ReadAll(bufio.NewReader(c))
		return string(b), err
	}

	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			chunk := 10 * (i % 2) // half trickle 100 bytes/s, half send nothing
			answer, err := trickle(chunk)
			if assert.NoError(t, err, "connection %d (chunk %d) still open", i, chunk) {
				assert.True(t, strings.HasPrefix(answer, "HTTP/1.1 408"), "answer: %q", answer)
				assert.Contains(t, answer, "too slowly")
			}
		}()
	}
	wg.Wait()

	// 4 MB at full speed passes the same limits.
	r := d.multipart(avtaltSBD(dpoOrg), part{"Vedlegg", "vedlegg.pdf", "application/pdf", bytes.Repeat([]byte("x"), 4<<20)})
	assert.Equal(t, 200, r.Code, "body: %s", r.Body)
}
