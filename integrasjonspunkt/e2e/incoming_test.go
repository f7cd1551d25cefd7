package e2e_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/packaging/cms"
	"github.com/efm-go/efm/transport/dpo"
)

// fromPeer turns an arkivmelding SBD into one peerOrg sends to us.
func fromPeer(t *testing.T, raw []byte) []byte {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	h := m["standardBusinessDocumentHeader"].(map[string]any)
	h["sender"] = []any{map[string]any{"identifier": map[string]any{"authority": "iso6523-actorid-upis", "value": "0192:" + peerOrg}}}
	h["receiver"] = []any{map[string]any{"identifier": map[string]any{"authority": "iso6523-actorid-upis", "value": "0192:" + ownOrg}}}
	h["documentIdentification"].(map[string]any)["creationDateAndTime"] = time.Now().Format(time.RFC3339)
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return b
}

// TestDPO_IncomingPackageRefused: a package that does not decrypt, or
// decrypts to something that is no signed container, makes the incoming
// message FEIL (channels.md §1.9.2). It is confirmed at the broker so it is
// not fetched again, never offered to the client, and the sender is owed no
// MOTTATT.
func TestDPO_IncomingPackageRefused(t *testing.T) {
	garbage := make([]byte, 4096)
	rand.Read(garbage)
	var unsigned bytes.Buffer
	_, err := cms.Encrypt(&unsigned, bytes.NewReader([]byte("PK not a signed container")), sims(t).PKI.Orgs[ownOrg].Cert,
		cms.EncryptOptions{KeyTransport: cms.RSAESOAEP, Cipher: cms.AES256CBC})
	require.NoError(t, err)

	d := startDaemon(t, ownOrg, t.TempDir(), nil)
	for name, pkg := range map[string][]byte{"undecryptable": garbage, "unsigned": unsigned.Bytes()} {
		t.Run(name, func(t *testing.T) {
			raw, _, id := arkivmelding(ownOrg, 0)
			var sent struct {
				FileTransferID string `json:"fileTransferId"`
			}
			simCall(t, "altinn-broker", "POST", "/_sim/send", map[string]any{"sender": peerOrg, "recipient": ownOrg,
				"sbd": json.RawMessage(fromPeer(t, raw)), "asic": base64.StdEncoding.EncodeToString(pkg)}, &sent)

			got := d.waitStatus(id, "FEIL", 30*time.Second)
			assert.Equal(t, []string{"OPPRETTET", "FEIL"}, got)

			// Confirmed at the broker: the next polls do not fetch it again.
			deadline := time.Now().Add(30 * time.Second)
			for {
				var ts []dpo.Overview
				simCall(t, "altinn-broker", "GET", "/_sim/transfers", nil, &ts)
				i := slices.IndexFunc(ts, func(o dpo.Overview) bool { return o.FileTransferID == sent.FileTransferID })
				require.GreaterOrEqual(t, i, 0, "transfer %s not at the broker", sent.FileTransferID)
				require.NotEmpty(t, ts[i].Recipients)
				if ts[i].Recipients[0].CurrentRecipientFileTransferStatusCode == dpo.RecipientDownloadConfirmed {
					break
				}
				require.True(t, time.Now().Before(deadline), "transfer never confirmed: %+v", ts[i].Recipients)
				time.Sleep(100 * time.Millisecond)
			}
			code, body := d.do("GET", "/api/messages/in/peek?messageId="+id)
			assert.NotEqual(t, 200, code, "a refused package is not offered to the client: %s", body)
			var rep struct {
				Statuses map[string][]string `json:"statuses"`
			}
			simCall(t, "altinn-broker", "GET", "/_sim/deliveries", nil, &rep)
			assert.Empty(t, rep.Statuses[id], "no status message back to the sender")
		})
	}
}

// TestDPO_Reportee: with difi.move.dpo.reportees the daemon also drains the
// broker inbox of each organisation it acts for, with that organisation's
// system user (channels.md §2.2, §2.4), and answers MOTTATT as it.
func TestDPO_Reportee(t *testing.T) {
	const reportee = dpvOrg // no integration point of its own polls the broker
	d := startDaemon(t, ownOrg, t.TempDir(), map[string]string{
		"difi.move.dpo.reportees[0].orgId": "0192:" + reportee,
		"difi.move.dpo.reportees[0].name":  reportee + "_integrasjonspunkt_systembruker_" + reportee,
	})
	id, related := uuid.NewString(), uuid.NewString()
	sbd := map[string]any{
		"standardBusinessDocumentHeader": map[string]any{
			"headerVersion": "1.0",
			"sender":        []any{map[string]any{"identifier": map[string]any{"authority": "iso6523-actorid-upis", "value": "0192:" + peerOrg}}},
			"receiver":      []any{map[string]any{"identifier": map[string]any{"authority": "iso6523-actorid-upis", "value": "0192:" + reportee}}},
			"documentIdentification": map[string]any{"standard": "urn:no:difi:arkivmelding:xsd::arkivmelding_kvittering", "typeVersion": "2.0",
				"type": "arkivmelding_kvittering", "instanceIdentifier": id, "creationDateAndTime": time.Now().Format(time.RFC3339)},
			"businessScope": map[string]any{"scope": []any{map[string]any{"type": "ConversationId", "identifier": arkivResponse,
				"instanceIdentifier": uuid.NewString()}}},
		},
		"arkivmelding_kvittering": map[string]any{"receiptType": "OK", "relatedToMessageId": related},
	}
	simCall(t, "altinn-broker", "POST", "/_sim/send", map[string]any{"sender": peerOrg, "recipient": reportee, "sbd": sbd}, nil)

	m := d.waitIncoming(arkivResponse, 30*time.Second)
	h := m["standardBusinessDocumentHeader"].(map[string]any)
	assert.Equal(t, id, h["documentIdentification"].(map[string]any)["instanceIdentifier"])
	receiver := h["receiver"].([]any)[0].(map[string]any)["identifier"].(map[string]any)["value"]
	assert.Equal(t, "0192:"+reportee, receiver)

	deadline := time.Now().Add(30 * time.Second)
	for {
		var rep struct {
			Statuses map[string][]string `json:"statuses"`
		}
		simCall(t, "altinn-broker", "GET", "/_sim/deliveries", nil, &rep)
		if slices.Contains(rep.Statuses[id], "MOTTATT") {
			break
		}
		require.True(t, time.Now().Before(deadline), "no MOTTATT from the reportee; statuses %v", rep.Statuses[id])
		time.Sleep(100 * time.Millisecond)
	}
}
