package dpe

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/efm-go/efm/transport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const envSBD = `{"standardBusinessDocumentHeader": {
 "sender": [{"identifier": {"value": "0192:910077473", "authority": "iso6523-actorid-upis"}}],
 "receiver": [{"identifier": {"value": "0192:991825827", "authority": "iso6523-actorid-upis"}}],
 "documentIdentification": {"standard": "urn:no:difi:einnsyn:xsd::publisering", "typeVersion": "1.0",
  "instanceIdentifier": "5f0b3a6e-2d7c-4d4e-9a39-6a1f0a3c1b01", "type": "publisering"},
 "businessScope": {"scope": [{"type": "ConversationId", "instanceIdentifier": "8a4c1f02-7b9e-4c3d-8f21-0e5d6c7b8a90",
  "identifier": "urn:no:difi:profile:einnsyn:journalpost:ver1.0"}]}},
 "publisering": {"orgnr": "910077473"}}`

func TestEnvelope_DoubleBase64(t *testing.T) {
	cms := []byte{0x30, 0x80, 0x06, 0x09}
	body, err := EncodeEnvelope([]byte(envSBD), cms)
	require.NoError(t, err)
	inner := base64.StdEncoding.EncodeToString(cms)
	assert.Contains(t, string(body), `"asic":"`+base64.StdEncoding.EncodeToString([]byte(inner))+`"`)

	sbd, h, got, err := DecodeEnvelope(body)
	require.NoError(t, err)
	assert.Equal(t, cms, got)
	assert.Equal(t, "publisering", h.Type)
	assert.JSONEq(t, envSBD, string(sbd))

	body, err = EncodeEnvelope([]byte(envSBD), nil)
	require.NoError(t, err)
	assert.Contains(t, string(body), `"asic":null`)
	_, _, got, err = DecodeEnvelope(body)
	require.NoError(t, err)
	assert.Nil(t, got)
}

func TestDecodeEnvelope_Malformed(t *testing.T) {
	for name, in := range map[string]string{
		"not json":     `{`,
		"no sbd":       `{"asic": null}`,
		"bad outer":    `{"sbd": ` + envSBD + `, "asic": "!!"}`,
		"single layer": `{"sbd": ` + envSBD + `, "asic": "` + base64.StdEncoding.EncodeToString([]byte{0x30, 0x80, 0xff}) + `"}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, _, _, err := DecodeEnvelope([]byte(in))
			assert.ErrorIs(t, err, transport.ErrMalformed)
		})
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	body, _ := EncodeEnvelope([]byte(envSBD), []byte("cms"))
	f.Add(body)
	body, _ = EncodeEnvelope([]byte(envSBD), nil)
	f.Add(body)
	f.Add([]byte(`{"sbd": null, "asic": ""}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		sbd, h, cms, err := DecodeEnvelope(in)
		if err != nil {
			if !errors.Is(err, transport.ErrMalformed) {
				t.Fatalf("error not marked malformed: %v", err)
			}
			return
		}
		if h.MessageID == "" {
			t.Fatal("accepted an envelope without a messageId")
		}
		again, err := EncodeEnvelope(sbd, cms)
		if err != nil {
			t.Fatalf("cannot re-encode an accepted envelope: %v", err)
		}
		_, h2, cms2, err := DecodeEnvelope(again)
		if err != nil || h2 != h || !bytes.Equal(cms, cms2) || (cms == nil) != (cms2 == nil) {
			t.Fatalf("round trip changed the envelope: %v", err)
		}
	})
}

func TestSAS(t *testing.T) {
	exp := time.Unix(1700000020, 0)
	hdr := Signature("https://efm-dpe-qa.servicebus.windows.net/nextbestqueue910077473innsyn/messages", "MoveDPE-pilotPolicy", "k", exp)
	assert.True(t, strings.HasPrefix(hdr, "SharedAccessSignature sr=https%3A%2F%2Fefm-dpe-qa.servicebus.windows.net%2Fnextbestqueue910077473innsyn%2Fmessages&sig="))
	assert.True(t, strings.HasSuffix(hdr, "&se=1700000020&skn=MoveDPE-pilotPolicy"))
	s, err := ParseSAS(hdr)
	require.NoError(t, err)
	assert.True(t, s.Valid("k"))
	assert.False(t, s.Valid("other"))
	assert.Equal(t, exp, s.Expiry)
	assert.Equal(t, "MoveDPE-pilotPolicy", s.KeyName)
}

func FuzzParseSAS(f *testing.F) {
	f.Add(Signature("http://127.0.0.1:1/q/messages", "n", "k", time.Unix(1, 0)))
	f.Add("SharedAccessSignature sr=a&sig=&se=1&skn=n")
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseSAS(in)
		if err != nil {
			return
		}
		if s.Resource == "" || s.KeyName == "" || s.Sig == nil {
			t.Fatalf("accepted a signature without its parts: %+v", s)
		}
		// Re-signing what was parsed with any key verifies with that key.
		re, err := ParseSAS(Signature(s.Resource, s.KeyName, "key", s.Expiry))
		if err != nil || !re.Valid("key") || re.Resource != s.Resource {
			t.Fatalf("re-signed signature does not verify: %v", err)
		}
	})
}
