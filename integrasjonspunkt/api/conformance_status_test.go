package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/integrasjonspunkt/message"
	"github.com/efm-go/efm/integrasjonspunkt/sbd"
)

func (d *daemon) setStatus(id, status string) {
	d.t.Helper()
	require.NoError(d.t, d.core.SetStatus(context.Background(), message.Change{MessageID: id, Status: status}))
}

// sendDPV creates a DPV message with a titled file and queues it.
func (d *daemon) sendDPV() string {
	d.t.Helper()
	s := newSBD("arkivmelding", "urn:no:difi:arkivmelding:xsd::arkivmelding", archiveProc, "0192:"+dpvOrg, map[string]any{"hoveddokument": "vedtak.pdf"})
	_, id := d.create(s)
	require.Equal(d.t, 200, d.put("/api/messages/out/"+id, arkivmeldingXML("T", "vedtak.pdf"), "Content-Disposition", cd("Arkivmelding", "arkivmelding.xml")).Code)
	require.Equal(d.t, 200, d.put("/api/messages/out/"+id, []byte("%PDF"), "Content-Disposition", cd("Vedtak", "vedtak.pdf")).Code)
	require.Equal(d.t, 200, d.do("POST", "/api/messages/out/"+id, nil).Code)
	return id
}

func TestConformanceRecords(t *testing.T) {
	d := startDaemon(t, nil)

	t.Run("C48_conversation_filters", func(t *testing.T) {
		open := d.receive(arkivIn(), "DPO", nil)
		done := d.receive(arkivIn(), "DPO", nil)
		require.Equal(t, 200, d.get("/api/messages/in/peek?messageId="+done).Code)
		require.Equal(t, 200, d.do("DELETE", "/api/messages/in/"+done, nil).Code)
		d.create(arkivSBD(dpoOrg))
		m := d.get("/api/conversations?direction=INCOMING&finished=false&size=100").JSON(t)
		var ids []string
		for _, c := range m["content"].([]any) {
			c := c.(map[string]any)
			assert.Equal(t, "INCOMING", c["direction"])
			assert.Equal(t, false, c["finished"])
			ids = append(ids, c["messageId"].(string))
		}
		assert.Contains(t, ids, open)
		assert.NotContains(t, ids, done)
		requireError(t, d.get("/api/conversations?direction=SIDEWAYS"), 400, "")
	})
	t.Run("C49_incoming_conversation_by_id_is_404", func(t *testing.T) {
		in := d.receive(arkivIn(), "DPO", nil)
		c := d.get("/api/conversations?direction=INCOMING&messageId=" + in).JSON(t)["content"].([]any)[0].(map[string]any)
		id := strconv.FormatInt(int64(c["id"].(float64)), 10)
		requireError(t, d.get("/api/conversations/"+id), 404, "ConversationNotFoundException")
		_, out := d.create(arkivSBD(dpoOrg))
		oc := outConversation(t, d, out)
		r := d.get("/api/conversations/" + strconv.FormatInt(int64(oc["id"].(float64)), 10))
		require.Equal(t, 200, r.Code)
		assert.Equal(t, out, r.JSON(t)["messageId"])
		requireError(t, d.get("/api/conversations/abc"), 400, "")
	})
	t.Run("C50_conversation_by_unknown_messageId", func(t *testing.T) {
		requireError(t, d.get("/api/conversations/messageId/"+newID()), 404, "no.difi.meldingsutveksling.exceptions.MessageNotFoundException")
	})
	t.Run("C51_conversation_json_shape", func(t *testing.T) {
		_, id := d.create(arkivSBD(dpoOrg))
		d.setStatus(id, "SENDT")
		d.setStatus(id, "MOTTATT")
		r := d.get("/api/conversations/messageId/" + id)
		assert.NotContains(t, string(r.Body), "null")
		m := r.JSON(t)
		assert.NotContains(t, m, "pollable")
		assert.NotContains(t, m, "serviceCode")
		assert.NotContains(t, m, "serviceEditionCode")
		assert.Equal(t, "", m["messageTitle"])
		var last float64
		for _, st := range m["messageStatuses"].([]any) {
			id := st.(map[string]any)["id"].(float64)
			assert.Greater(t, id, last)
			last = id
		}
		list := d.get("/api/conversations?size=100")
		assert.NotContains(t, string(list.Body), "null")
		assert.NotContains(t, string(list.Body), "pollable")
	})
	t.Run("C52_queue_holds_polled_conversations", func(t *testing.T) {
		id := d.sendDPV()
		inQueue := func() bool {
			for _, c := range d.get("/api/conversations/queue?size=100").JSON(t)["content"].([]any) {
				if c.(map[string]any)["messageId"] == id {
					return true
				}
			}
			return false
		}
		assert.False(t, inQueue())
		d.setStatus(id, "SENDT")
		assert.True(t, inQueue())
		d.setStatus(id, "LEVERT")
		d.setStatus(id, "LEST")
		assert.False(t, inQueue())
	})
	t.Run("C53_statuses_filter_and_fields", func(t *testing.T) {
		_, id := d.create(arkivSBD(dpoOrg))
		d.setStatus(id, "SENDT")
		d.setStatus(id, "LEVERT")
		m := d.get("/api/statuses?status=LEVERT&size=100").JSON(t)
		content := m["content"].([]any)
		require.NotEmpty(t, content)
		var last float64
		for _, c := range content {
			c := c.(map[string]any)
			assert.Equal(t, "LEVERT", c["status"])
			for _, k := range []string{"id", "convId", "messageId", "conversationId", "status", "lastUpdate"} {
				assert.Contains(t, c, k)
			}
			assert.Greater(t, c["id"].(float64), last)
			last = c["id"].(float64)
		}
	})
	t.Run("C54_lone_fromDateTime_ignored", func(t *testing.T) {
		all := d.get("/api/statuses?size=2000").JSON(t)["totalElements"]
		future := strings.ReplaceAll(sbd.FormatTime(time.Now().Add(time.Hour)), "+", "%2B")
		assert.Equal(t, all, d.get("/api/statuses?size=2000&fromDateTime=" + future).JSON(t)["totalElements"])
		to := strings.ReplaceAll(sbd.FormatTime(time.Now().Add(2*time.Hour)), "+", "%2B")
		assert.EqualValues(t, 0, d.get("/api/statuses?fromDateTime=" + future + "&toDateTime=" + to).JSON(t)["totalElements"], "both bounds apply")
	})
	t.Run("C55_statuses_of_unknown_message", func(t *testing.T) {
		r := d.get("/api/statuses/" + newID())
		require.Equal(t, 200, r.Code)
		assert.Empty(t, r.JSON(t)["content"])
		assert.Equal(t, true, r.JSON(t)["empty"])
	})
	t.Run("C56_status_recorded_once", func(t *testing.T) {
		_, id := d.create(arkivSBD(dpoOrg))
		d.setStatus(id, "SENDT")
		d.setStatus(id, "SENDT")
		d.setStatus(id, "MOTTATT")
		d.setStatus(id, "MOTTATT")
		assert.Equal(t, []string{"OPPRETTET", "SENDT", "MOTTATT"}, statusesOf(t, d, id))
	})
	t.Run("C58_status_queue_off_by_default", func(t *testing.T) {
		r := d.get("/api/statuses/peek")
		assert.Equal(t, 204, r.Code)
		assert.Empty(t, r.Body)
	})
	t.Run("C59_DPI_LEVERT_before_MOTTATT", func(t *testing.T) {
		_, id := d.create(digitalSBD(citizen))
		d.setStatus(id, "SENDT")
		d.setStatus(id, "LEVERT")
		d.setStatus(id, "MOTTATT") // late: ignored
		m := d.get("/api/statuses/" + id).JSON(t)
		var names []string
		var times []time.Time
		for _, c := range m["content"].([]any) {
			c := c.(map[string]any)
			names = append(names, c["status"].(string))
			tm, err := sbd.ParseTime(c["lastUpdate"].(string))
			require.NoError(t, err)
			times = append(times, tm)
		}
		require.Equal(t, []string{"OPPRETTET", "SENDT", "MOTTATT", "LEVERT"}, names)
		assert.Equal(t, time.Second, times[3].Sub(times[2]))
	})
	t.Run("C60_outgoing_expiry", func(t *testing.T) {
		s := arkivSBD(dpoOrg)
		s.scope()["scopeInformation"] = []any{map[string]any{"expectedResponseDateTime": sbd.FormatTime(time.Now().Add(1500 * time.Millisecond))}}
		_, id := d.create(s)
		eventually(t, func() bool {
			for _, st := range statusesOf(t, d, id) {
				if st == "LEVETID_UTLOPT" {
					return true
				}
			}
			return false
		}, "LEVETID_UTLOPT recorded")
		assert.Equal(t, true, outConversation(t, d, id)["finished"])
	})
	t.Run("C74_trailing_slash", func(t *testing.T) {
		a := d.get("/api/messages/out")
		b := d.get("/api/messages/out/")
		require.Equal(t, 200, b.Code)
		assert.Equal(t, a.JSON(t)["totalElements"], b.JSON(t)["totalElements"])
		assert.Equal(t, 200, d.get("/api/v1/messages/out/").Code)
	})
	t.Run("C75_scalars_as_strings", func(t *testing.T) {
		s := digitalSBD(citizen)
		b := s["digital"].(map[string]any)
		b["sikkerhetsnivaa"] = "4"
		b["digitalPostInfo"].(map[string]any)["aapningskvittering"] = "true"
		m, _ := d.create(s)
		got := m["digital"].(map[string]any)
		assert.EqualValues(t, 4, got["sikkerhetsnivaa"])
		assert.Equal(t, true, got["digitalPostInfo"].(map[string]any)["aapningskvittering"])
	})
	t.Run("C72_manage", func(t *testing.T) {
		r := d.get("/manage/health")
		require.Equal(t, 200, r.Code)
		assert.Equal(t, "UP", r.JSON(t)["status"])
		info := d.get("/manage/info").JSON(t)
		assert.Contains(t, info["build"], "version")
		assert.Contains(t, info["api"], "v1")
	})
	t.Run("C73_error_body_fields", func(t *testing.T) {
		for _, r := range []resp{
			d.get("/api/messages/out/" + newID()),
			d.get("/api/nothing-here"),
			d.do("PATCH", "/api/messages/out", nil),
			d.postJSON("/api/messages/out", map[string]any{"standardBusinessDocumentHeader": "not an object"}),
			d.do("POST", "/api/messages/out", strings.NewReader("{"), "Content-Type", "application/json"),
		} {
			m := requireError(t, r, r.Code, "")
			assert.GreaterOrEqual(t, r.Code, 400)
			if r.Code != 404 || strings.Contains(string(r.Body), "MessageNotFound") {
				assert.Contains(t, m, "exception", "known error: %s", r.Body)
			}
		}
		assert.Equal(t, 405, d.do("PATCH", "/api/messages/out", nil).Code)
	})
}

func TestConformanceStatusQueue(t *testing.T) {
	d := startDaemon(t, map[string]string{"difi.move.feature.statusQueueIncludes": "DPO"})
	t.Run("C57_status_queue", func(t *testing.T) {
		_, id := d.create(arkivSBD(dpoOrg))
		first := d.get("/api/statuses/peek")
		require.Equal(t, 200, first.Code, "body: %s", first.Body)
		again := d.get("/api/statuses/peek")
		assert.Equal(t, first.Body, again.Body, "peek does not remove")
		st := first.JSON(t)
		assert.Equal(t, id, st["messageId"])
		assert.Equal(t, "OPPRETTET", st["status"])
		d.setStatus(id, "SENDT")
		sid := strconv.FormatInt(int64(st["id"].(float64)), 10)
		r := d.do("DELETE", "/api/statuses/"+sid, nil)
		assert.Equal(t, 200, r.Code)
		next := d.get("/api/statuses/peek")
		require.Equal(t, 200, next.Code)
		assert.Equal(t, "SENDT", next.JSON(t)["status"])
		r = d.do("DELETE", "/api/statuses/"+sid, nil)
		assert.Equal(t, 404, r.Code)
		assert.Empty(t, r.Body)
		nid := strconv.FormatInt(int64(next.JSON(t)["id"].(float64)), 10)
		require.Equal(t, 200, d.do("DELETE", "/api/statuses/"+nid, nil).Code)
		assert.Equal(t, 204, d.get("/api/statuses/peek").Code)
	})
}

func TestConformanceTimeToLive(t *testing.T) {
	d := startDaemon(t, map[string]string{"efm.expiry.check-interval": "1h"})
	t.Run("C60_send_expired_message", func(t *testing.T) {
		s := avtaltSBD(dpoOrg)
		s.scope()["scopeInformation"] = []any{map[string]any{"expectedResponseDateTime": sbd.FormatTime(time.Now().Add(time.Second))}}
		_, id := d.create(s)
		time.Sleep(1100 * time.Millisecond)
		requireError(t, d.do("POST", "/api/messages/out/"+id, nil), 400, "TimeToLiveException")
		assert.Contains(t, statusesOf(t, d, id), "LEVETID_UTLOPT")
		assert.Equal(t, true, outConversation(t, d, id)["finished"])
	})
}

// hookServer is a push endpoint that records what it receives.
type hookServer struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []map[string]any
	raw    [][]byte
}

func newHookServer(t *testing.T) *hookServer {
	h := &hookServer{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		h.mu.Lock()
		h.bodies = append(h.bodies, m)
		h.raw = append(h.raw, b)
		h.mu.Unlock()
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) received() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]any(nil), h.bodies...)
}

func (h *hookServer) events(messageID string) []map[string]any {
	var out []map[string]any
	for _, b := range h.received() {
		if b["messageId"] == messageID {
			out = append(out, b)
		}
	}
	return out
}

func subscription(name, endpoint, filter string) map[string]any {
	s := map[string]any{"name": name, "pushEndpoint": endpoint, "resource": "messages", "event": "status"}
	if filter != "" {
		s["filter"] = filter
	}
	return s
}

func TestConformanceWebhooks(t *testing.T) {
	d := startDaemon(t, nil)
	hook := newHookServer(t)

	t.Run("C62_bad_event", func(t *testing.T) {
		s := subscription("x", hook.URL, "")
		s["event"] = "created"
		m := requireError(t, d.postJSON("/api/subscriptions", s), 400, message.NameConstraintViolation)
		e := m["errors"].([]any)[0].(map[string]any)
		assert.Equal(t, "event", e["field"])
		assert.Equal(t, "OneOf", e["code"])
		assert.Equal(t, "created", e["rejectedValue"])
	})
	var subID float64
	t.Run("C63_create_pings_once", func(t *testing.T) {
		r := d.postJSON("/api/subscriptions", subscription("Sak/arkiv", hook.URL, ""))
		require.Equal(t, 200, r.Code, "body: %s", r.Body)
		subID = r.JSON(t)["id"].(float64)
		assert.Greater(t, subID, float64(0))
		got := hook.received()
		require.Len(t, got, 1)
		assert.Equal(t, "ping", got[0]["event"])
		assert.Contains(t, got[0], "createdTs")
		assert.NotContains(t, got[0], "resource")
	})
	t.Run("C64_duplicate_name_and_endpoint", func(t *testing.T) {
		requireError(t, d.postJSON("/api/subscriptions", subscription("Sak/arkiv", hook.URL, "")), 400,
			"SubscriptionWithSameNameAndPushEndpointAlreadyExists")
	})
	t.Run("C65_filter_grammar", func(t *testing.T) {
		m := requireError(t, d.postJSON("/api/subscriptions", subscription("f1", hook.URL, "color=red")), 400, message.NameConstraintViolation)
		assert.Equal(t, "WebhookFilter", m["errors"].([]any)[0].(map[string]any)["code"])
		r := d.postJSON("/api/subscriptions", subscription("f2", hook.URL+"/f2", "status=feil,levetid_utlopt&direction=OUTGOING"))
		require.Equal(t, 200, r.Code, "body: %s", r.Body)
		require.Equal(t, 200, d.do("DELETE", "/api/subscriptions/"+strconv.Itoa(int(r.JSON(t)["id"].(float64))), nil).Code)
	})
	t.Run("C66_filter_selects_events", func(t *testing.T) {
		fh := newHookServer(t)
		require.Equal(t, 200, d.postJSON("/api/subscriptions", subscription("feil", fh.URL, "status=FEIL&direction=OUTGOING")).Code)
		_, failed := d.create(arkivSBD(dpoOrg))
		_, delivered := d.create(arkivSBD(dpoOrg))
		d.setStatus(delivered, "SENDT")
		d.setStatus(delivered, "LEVERT")
		in := d.receive(arkivIn(), "DPO", nil)
		require.NoError(t, d.core.SetStatus(context.Background(), message.Change{MessageID: in, Direction: "INCOMING", Status: "FEIL"}))
		d.setStatus(failed, "FEIL")
		eventually(t, func() bool { return len(fh.events(failed)) == 1 }, "FEIL event delivered")
		eventually(t, func() bool { return len(hook.events(failed)) >= 2 }, "unfiltered subscription got it too")
		assert.Empty(t, fh.events(delivered))
		assert.Empty(t, fh.events(in))
	})
	t.Run("C67_event_body", func(t *testing.T) {
		_, id := d.create(arkivSBD(dpoOrg))
		require.NoError(t, d.core.SetStatus(context.Background(), message.Change{MessageID: id, Status: "FEIL", Description: "avvist"}))
		eventually(t, func() bool { return len(hook.events(id)) == 2 }, "two events")
		for _, ev := range hook.events(id) {
			for _, k := range []string{"createdTs", "messageId", "conversationId", "direction", "serviceIdentifier", "status"} {
				assert.Contains(t, ev, k)
			}
			assert.Equal(t, "messages", ev["resource"])
			assert.Equal(t, "status", ev["event"])
			if ev["status"] == "FEIL" {
				assert.Equal(t, "avvist", ev["description"])
			} else {
				assert.NotContains(t, ev, "description")
			}
		}
	})
	t.Run("C68_events_for_created_and_incoming_never_block", func(t *testing.T) {
		_, id := d.create(arkivSBD(dpoOrg))
		in := d.receive(arkivIn(), "DPO", nil)
		eventually(t, func() bool { return len(hook.events(id)) == 1 && hook.events(id)[0]["status"] == "OPPRETTET" }, "OPPRETTET event")
		eventually(t, func() bool {
			var sts []any
			for _, e := range hook.events(in) {
				sts = append(sts, e["status"])
			}
			return assert.ObjectsAreEqual(2, len(sts))
		}, "incoming events")
		// A dead endpoint: creating messages still answers at once.
		dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(3 * time.Second)
			w.WriteHeader(500)
		}))
		url := dead.URL
		dead.CloseClientConnections()
		r := d.postJSON("/api/subscriptions", subscription("dead", url, ""))
		require.Equal(t, 200, r.Code, "a failed ping does not refuse the subscription (D7)")
		for range 5 {
			start := time.Now()
			d.create(arkivSBD(dpoOrg))
			assert.Less(t, time.Since(start), 2*time.Second)
		}
		dead.Close()
		require.Equal(t, 200, d.do("DELETE", "/api/subscriptions/"+strconv.Itoa(int(r.JSON(t)["id"].(float64))), nil).Code)
	})
	t.Run("C69_partial_update", func(t *testing.T) {
		sid := strconv.Itoa(int(subID))
		r := d.do("PUT", "/api/subscriptions/"+sid, bytes.NewReader([]byte(`{"name":"ny"}`)), "Content-Type", "application/json")
		require.Equal(t, 200, r.Code, "body: %s", r.Body)
		assert.Empty(t, r.Body)
		m := d.get("/api/subscriptions/" + sid).JSON(t)
		assert.Equal(t, "ny", m["name"])
		assert.Equal(t, hook.URL, m["pushEndpoint"])
		assert.Equal(t, "messages", m["resource"])
		assert.Equal(t, "status", m["event"])
		r = d.do("PUT", "/api/subscriptions/987654", bytes.NewReader([]byte(`{"name":"ny"}`)), "Content-Type", "application/json")
		requireError(t, r, 404, "SubscriptionNotFoundException")
	})
	t.Run("C70_delete_subscriptions", func(t *testing.T) {
		requireError(t, d.do("DELETE", "/api/subscriptions/987654", nil), 404, "SubscriptionNotFoundException")
		requireError(t, d.get("/api/subscriptions/987654"), 404, "SubscriptionNotFoundException")
		assert.Equal(t, 200, d.do("DELETE", "/api/subscriptions", nil).Code)
		m := d.get("/api/subscriptions").JSON(t)
		assert.Empty(t, m["content"])
		assert.EqualValues(t, 0, m["totalElements"])
	})
}

func TestConformanceAuth(t *testing.T) {
	d := startDaemon(t, map[string]string{"difi.security.enable": "true", "difi.security.user.name": "efm", "difi.security.user.password": "hemmelig"})
	t.Run("C71_basic_auth_on_api_only", func(t *testing.T) {
		r := d.get("/api/conversations")
		assert.Equal(t, 401, r.Code)
		assert.Contains(t, r.Header.Get("WWW-Authenticate"), "Basic realm=")
		assert.Equal(t, 200, d.get("/manage/health").Code)
		req, _ := http.NewRequest("GET", d.base+"/api/conversations", nil)
		req.SetBasicAuth("efm", "hemmelig")
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, 200, res.StatusCode)
		req.SetBasicAuth("efm", "feil")
		res, err = http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, 401, res.StatusCode)
	})
}
