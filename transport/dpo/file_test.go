package dpo

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/efm-go/efm/transport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const fileSBD = `{"standardBusinessDocumentHeader": {
 "sender": [{"identifier": {"value": "0192:910077473", "authority": "iso6523-actorid-upis"}}],
 "receiver": [{"identifier": {"value": "0192:910075918", "authority": "iso6523-actorid-upis"}}],
 "documentIdentification": {"standard": "urn:no:difi:eformidling:xsd::status", "typeVersion": "2.0",
  "instanceIdentifier": "5f0b3a6e-2d7c-4d4e-9a39-6a1f0a3c1b01", "type": "status"},
 "businessScope": {"scope": [{"type": "ConversationId", "instanceIdentifier": "8a4c1f02-7b9e-4c3d-8f21-0e5d6c7b8a90",
  "identifier": "urn:no:difi:profile:arkivmelding:response:ver1.0"}]}},
 "status": {"status": "MOTTATT"}}`

func TestWriteFile_RoundTrip(t *testing.T) {
	for _, payload := range [][]byte{nil, {}, []byte("cms bytes"), bytes.Repeat([]byte{0xA5}, 70000)} {
		t.Run(fmt.Sprint(len(payload)), func(t *testing.T) {
			var buf bytes.Buffer
			require.NoError(t, WriteFile(&buf, []byte(fileSBD), payload))
			f, err := ParseFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
			require.NoError(t, err)
			assert.Equal(t, fileSBD, string(f.SBD))
			assert.Equal(t, "MOTTATT", f.Header.Status)
			assert.Equal(t, payload != nil, f.HasPayload())
			if payload != nil {
				rc, err := f.OpenPayload()
				require.NoError(t, err)
				got, err := io.ReadAll(rc)
				require.NoError(t, err)
				assert.Equal(t, payload, got)
			}
		})
	}
}

func TestBrokerFile_LengthIsExact(t *testing.T) {
	payload := bytes.Repeat([]byte("x"), 12345)
	open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(payload)), nil }
	f, err := newBrokerFile([]byte(fileSBD), open)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, f.write(&buf, open))
	assert.Equal(t, f.length, int64(buf.Len()), "Content-Length must match the streamed body")

	changed := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(payload[1:])), nil }
	assert.Error(t, f.write(io.Discard, changed), "a payload that changes between reads is caught")
}

func TestParseFile_Malformed(t *testing.T) {
	zipOf := func(entries map[string]string) []byte {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for name, body := range entries {
			w, _ := zw.Create(name)
			_, _ = w.Write([]byte(body))
		}
		_ = zw.Close()
		return buf.Bytes()
	}
	tests := map[string][]byte{
		"not a zip":       []byte("garbage"),
		"no sbd.json":     zipOf(map[string]string{"asic.zip": "x"}),
		"legacy xml only": zipOf(map[string]string{"content.xml": "<sbd/>"}),
		"bad sbd":         zipOf(map[string]string{"sbd.json": `{"standardBusinessDocumentHeader": {}}`}),
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ParseFile(bytes.NewReader(in), int64(len(in)))
			assert.ErrorIs(t, err, transport.ErrMalformed)
		})
	}
	f, err := ParseFile(bytes.NewReader(zipOf(map[string]string{"sbd.json": fileSBD, "extra.txt": "ignored"})), 0)
	assert.Error(t, err, "size is honoured")
	assert.Nil(t, f)
}

func FuzzParseFile(f *testing.F) {
	var buf bytes.Buffer
	_ = WriteFile(&buf, []byte(fileSBD), []byte("cms"))
	f.Add(buf.Bytes())
	buf.Reset()
	_ = WriteFile(&buf, []byte(fileSBD), nil)
	f.Add(buf.Bytes())
	f.Add([]byte("PK\x05\x06\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, in []byte) {
		file, err := ParseFile(bytes.NewReader(in), int64(len(in)))
		if err != nil {
			if !errors.Is(err, transport.ErrMalformed) {
				t.Fatalf("parse error not marked malformed: %v", err)
			}
			return
		}
		if file.Header.MessageID == "" || file.Header.ConversationID == "" {
			t.Fatalf("accepted a file without ids: %+v", file.Header)
		}
		// What we accept we can write again and read back unchanged.
		var payload []byte
		if file.HasPayload() {
			rc, err := file.OpenPayload()
			if err != nil {
				return // a corrupt entry is found when read, not when listed
			}
			payload, err = io.ReadAll(io.LimitReader(rc, 1<<20))
			rc.Close()
			if err != nil {
				return
			}
			if payload == nil {
				payload = []byte{}
			}
		}
		var out bytes.Buffer
		if err := WriteFile(&out, file.SBD, payload); err != nil {
			t.Fatalf("cannot write back an accepted file: %v", err)
		}
		again, err := ParseFile(bytes.NewReader(out.Bytes()), int64(out.Len()))
		if err != nil {
			t.Fatalf("written file does not parse: %v", err)
		}
		if !bytes.Equal(again.SBD, file.SBD) || again.Header != file.Header || again.HasPayload() != file.HasPayload() {
			t.Fatalf("round trip changed the file")
		}
	})
}
