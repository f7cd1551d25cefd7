package sandbox_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/integrasjonspunkt/check"
	"github.com/efm-go/efm/internal/apitest"
)

// TestWebPages_Chromium sends an organisation message and a citizen message
// through the sandbox and looks at every page the daemon serves in headless
// Chromium: each renders, the search finds the messages, the message page
// shows its road, the citizen's number is masked until asked for, and the
// status page shows the last check. Screenshots are kept as test output.
func TestWebPages_Chromium(t *testing.T) {
	bin := apitest.Chromium(t)
	d := startDaemon(t)
	base := d.base

	orgMsg, citizenMsg := sendBothToLevert(t, d)
	shots := t.ArtifactDir()
	// browse renders path in Chromium, keeps a screenshot and returns the
	// DOM; one browser start does both. html is the server's answer alone,
	// for the cases where the browser adds nothing.
	browse := func(name, path string) string {
		p := filepath.Join(shots, name+".png")
		dom := apitest.Browse(t, bin, base+path, "--dump-dom", "--screenshot="+p, "--window-size=1400,900", "--hide-scrollbars")
		fi, err := os.Stat(p)
		require.NoError(t, err, "screenshot %s", name)
		assert.Greater(t, fi.Size(), int64(5000), "screenshot %s is empty", name)
		return dom
	}
	html := func(path string) string { return get(http.DefaultClient, base+path, "") }

	// Status, before any check has run.
	dom := html("/")
	assert.Regexp(t, `id="health" class="state (UP|DEGRADED)"`, dom)
	for _, c := range []string{"store", "queue", "certificate", "central-log"} {
		assert.Contains(t, dom, `data-component="`+c+`"`, "the status page lists %s", c)
	}
	assert.Contains(t, dom, "DPO, DPV")
	assert.Contains(t, dom, "No check has run here yet")

	// The status page shows the last check.
	// DPI is on for the registry's citizen lookups but has no sender in this
	// build, so the check is asked about the channels the sandbox sends on.
	rep := check.Run(context.Background(), d.cfg, check.Options{DataDir: d.cfg.DataDir, Timeout: 10 * time.Second,
		Channels: []string{"DPO", "DPV", "DPE"}})
	require.True(t, rep.OK(), "%+v", rep.Results)
	require.NoError(t, rep.Save(d.cfg.DataDir))
	dom = browse("status", "/")
	assert.Regexp(t, `<tr data-part="maskinporten"><td>maskinporten</td><td class="state OK">OK</td>`, dom)
	assert.Contains(t, dom, `data-part="altinn broker (DPO)"`)

	// Search by message id from the header's box, and by conversation id.
	dom = browse("search", "/conversations?q="+orgMsg)
	assert.Contains(t, dom, `<a href="/ui/messages/`+orgMsg+`">`)
	assert.Contains(t, dom, `<p id="total">1 conversations</p>`)
	conv := conversationID(t, base, orgMsg)
	dom = html("/conversations?q=" + conv)
	assert.Contains(t, dom, orgMsg)

	// Filters: channel and status.
	dom = html("/conversations?channel=DPV")
	assert.Contains(t, dom, citizenMsg)
	assert.NotContains(t, dom, orgMsg)
	dom = html("/conversations?status=FEIL")
	assert.NotContains(t, dom, orgMsg)
	dom = browse("conversations", "/conversations")
	assert.Contains(t, dom, orgMsg)
	assert.Contains(t, dom, citizenMsg)
	assert.NotContains(t, dom, citizenReceiver, "the list masks the citizen's number")

	// The message page: the road in time order, in plain words.
	dom = browse("message", "/ui/messages/"+orgMsg)
	assert.Contains(t, dom, `<span id="message-id">`+orgMsg+`</span>`)
	var road []string
	for _, m := range regexp.MustCompile(`<tr class="step"><td>[^<]*</td><td class="status[^"]*">([A-Z_]+)</td><td>([^<]*)</td>`).FindAllStringSubmatch(dom, -1) {
		road = append(road, m[1])
		assert.NotEmpty(t, m[2], "status %s has its meaning", m[1])
	}
	require.NotEmpty(t, road)
	assert.Equal(t, "OPPRETTET", road[0])
	assert.Contains(t, road, "SENDT")
	assert.Contains(t, road, "LEVERT")

	// The citizen's number only when asked for, for this one message.
	dom = browse("message-masked", "/ui/messages/"+citizenMsg)
	assert.NotContains(t, dom, citizenReceiver)
	assert.Contains(t, dom, `<td id="receiver">***********</td>`)
	dom = html("/ui/messages/" + citizenMsg + "?reveal=true")
	assert.Contains(t, dom, `<td id="receiver">`+citizenReceiver+`</td>`)

	// The incoming queue and the webhooks render.
	dom = browse("incoming", "/ui/incoming")
	assert.Contains(t, dom, `<table id="incoming">`)
	assert.Regexp(t, `<p id="total">\d+ messages waiting`, dom)
	dom = browse("webhooks", "/ui/webhooks")
	assert.Contains(t, dom, `<table id="webhooks">`)

	dom = html("/ui/messages/no-such-message")
	assert.Contains(t, dom, "No message with id no-such-message")
	t.Logf("screenshots in %s", shots)
}

func conversationID(t *testing.T, base, messageID string) string {
	t.Helper()
	body := get(http.DefaultClient, base+"/api/conversations/messageId/"+messageID, "")
	m := regexp.MustCompile(`"conversationId"\s*:\s*"([^"]+)"`).FindStringSubmatch(body)
	require.Len(t, m, 2, body)
	return strings.TrimSpace(m[1])
}
