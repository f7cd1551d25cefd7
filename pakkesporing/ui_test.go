package pakkesporing_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/internal/apitest"
	"github.com/efm-go/efm/pakkesporing"
	"github.com/efm-go/efm/pakkesporing/pakkesporingtest"
)

func TestWebPage_Chromium(t *testing.T) {
	bin := apitest.Chromium(t)
	clk := &clock{t: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	ps := pakkesporingtest.New(t, pakkesporingtest.Options{Config: pakkesporing.Config{Now: clk.Now}})
	now := clk.Now()
	sb := newBuilder(t, senderOrg, clk.Now)
	rb := newBuilder(t, receiverOrg, clk.Now)
	m := newMessage()
	_, hb, err := sb.InstallationHeartbeat([]events.ServiceCount{{Service: events.DPO, Count: 1}}, now.Add(12*24*time.Hour))
	require.NoError(t, err)
	code, _ := post(t, ps.Client(t, senderOrg), ps.URL,
		hb,
		m.sent(t, sb, events.Opprettet, now.Add(-50*time.Minute)),
		m.sent(t, sb, events.Sendt, now.Add(-49*time.Minute)),
		m.sent(t, sb, events.Levert, now.Add(-40*time.Minute)),
	)
	require.Equal(t, http.StatusOK, code)
	code, _ = post(t, ps.Client(t, receiverOrg), ps.URL,
		m.received(t, rb, events.InnkommendeMottatt, now.Add(-45*time.Minute)),
		m.received(t, rb, events.InnkommendeLevert, now.Add(-41*time.Minute)),
	)
	require.Equal(t, http.StatusOK, code)

	// The browser reaches the page over plain loopback HTTP; the same
	// handler serves the TLS port, where only ingest needs a certificate.
	web := httptest.NewServer(ps.Handler())
	t.Cleanup(web.Close)
	base := strings.Replace(web.URL, "http://", "http://ops:"+pakkesporingtest.Token+"@", 1)

	// Search the message id, as the search box does (GET /ui/search?q=).
	dom := apitest.Browse(t, bin, base+"/ui/search?q="+m.id, "--dump-dom")
	require.Contains(t, dom, `id="message-id">`+m.id+`<`, "the search landed on the message's page")
	assert.Contains(t, dom, `data-side="Sender"`)
	assert.Contains(t, dom, `data-side="Receiver"`)
	road := regexp.MustCompile(`<tr class="step"><td>[^<]*</td><td>(sender|receiver)</td><td>(\d{9})</td><td>[A-Z]+</td><td>DPO</td><td[^>]*>([A-Z_]+)</td>`).
		FindAllStringSubmatch(dom, -1)
	var steps []string
	for _, r := range road {
		steps = append(steps, r[1]+":"+r[2]+":"+r[3])
	}
	assert.Equal(t, []string{
		"sender:" + senderOrg + ":OPPRETTET",
		"sender:" + senderOrg + ":SENDT",
		"receiver:" + receiverOrg + ":INNKOMMENDE_MOTTATT",
		"receiver:" + receiverOrg + ":INNKOMMENDE_LEVERT",
		"sender:" + senderOrg + ":LEVERT",
	}, steps, "the road across sender and receiver, in time order")

	shot := filepath.Join(t.ArtifactDir(), "message-road.png")
	apitest.Browse(t, bin, base+"/ui/search?q="+m.id, "--screenshot="+shot, "--window-size=1400,900", "--hide-scrollbars")
	fi, err := os.Stat(shot)
	require.NoError(t, err, "screenshot written")
	assert.Greater(t, fi.Size(), int64(5000))
	t.Logf("screenshot: %s", shot)

	// The dashboard: daily counts, fleet, certificates expiring within 30 days.
	dom = apitest.Browse(t, bin, base+"/", "--dump-dom")
	assert.Regexp(t, `<td>DPO</td><td class="good">LEVERT</td>(<td class="num">\d+</td>){14}<td class="num">1</td>`, dom)
	assert.Regexp(t, `(?s)id="expiring".*`+senderOrg+`.*2026-03-22`, dom)
	assert.Regexp(t, `(?s)id="versions".*<td>1\.2\.3</td><td class="num">2</td>`, dom)
	apitest.Browse(t, bin, base+"/", "--screenshot="+filepath.Join(t.ArtifactDir(), "dashboard.png"), "--window-size=1400,900")

	// Search by conversation id and by organisation.
	dom = apitest.Browse(t, bin, base+"/ui/search?q="+m.conv, "--dump-dom")
	assert.Contains(t, dom, `id="message-id">`+m.id+`<`)
	dom = apitest.Browse(t, bin, base+"/ui/search?q="+receiverOrg, "--dump-dom")
	assert.Contains(t, dom, "Organisation "+receiverOrg)
	assert.Contains(t, dom, m.id)

	// Without the credential the browser gets nothing.
	dom = apitest.Browse(t, bin, web.URL+"/ui/search?q="+m.id, "--dump-dom")
	assert.NotContains(t, dom, m.id)
}

func TestWebPage_NotFoundAndEscaping(t *testing.T) {
	ps := pakkesporingtest.New(t, pakkesporingtest.Options{Config: pakkesporing.Config{Now: testNow}})
	web := httptest.NewServer(ps.Handler())
	t.Cleanup(web.Close)
	req, err := http.NewRequest(http.MethodGet, web.URL+"/ui/search?q=%3Cscript%3Ealert(1)%3C/script%3E", nil)
	require.NoError(t, err)
	req.SetBasicAuth("ops", pakkesporingtest.Token)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
	body := new(strings.Builder)
	_, _ = io.Copy(body, res.Body)
	assert.NotContains(t, body.String(), "<script>alert(1)</script>")
	assert.Contains(t, res.Header.Get("Content-Security-Policy"), "default-src 'none'")
}
