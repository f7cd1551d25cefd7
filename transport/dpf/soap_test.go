package dpf_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/transport"
	"github.com/efm-go/efm/transport/dpf"
	"github.com/efm-go/efm/transport/dpf/dpfsim"
)

// wsdlSchema writes the WSDL's inline schema to a file xmllint can use.
func wsdlSchema(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join("testdata", "wire", "svarut-soap", "ForsendelsesServiceV9.wsdl"))
	require.NoError(t, err)
	s := string(b)
	i, j := strings.Index(s, "<xs:schema"), strings.Index(s, "</xs:schema>")
	require.True(t, i > 0 && j > i)
	p := filepath.Join(t.TempDir(), "svarut-v9.xsd")
	require.NoError(t, os.WriteFile(p, []byte(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+s[i:j+len("</xs:schema>")]), 0o600))
	return p
}

// soapValidating checks every SOAP request against the WSDL's schema with
// xmllint (an independent XSD implementation): the operation element, with
// each XOP include replaced by its attachment in base64 as the XOP
// processing model says.
type soapValidating struct {
	t      *testing.T
	xmllnt string
	schema string
	mu     sync.Mutex
	errs   []string
	ops    map[string]int
}

var xopInclude = regexp.MustCompile(`<xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:([^"]+)"/>`)

func newSOAPValidating(t *testing.T) *soapValidating {
	p, err := exec.LookPath("xmllint")
	if err != nil {
		if testing.Short() {
			t.Skip("xmllint not installed (Debian package libxml2-utils)")
		}
		t.Fatal("xmllint not installed: apt-get install libxml2-utils")
	}
	v := &soapValidating{t: t, xmllnt: p, schema: wsdlSchema(t), ops: map[string]int{}}
	t.Cleanup(func() {
		for _, e := range v.errs {
			t.Errorf("wsdl contract: %s", e)
		}
	})
	return v
}

func (v *soapValidating) RoundTrip(r *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err := v.check(r.Header.Get("Content-Type"), body); err != nil {
		v.mu.Lock()
		v.errs = append(v.errs, err.Error())
		v.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (v *soapValidating) check(ctype string, body []byte) error {
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		return err
	}
	root, parts := body, map[string][]byte{}
	if mt == "multipart/related" {
		if params["type"] != "application/xop+xml" || params["start-info"] != "application/soap+xml" {
			return fmt.Errorf("mtom content type %q", ctype)
		}
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		root = nil
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			b, _ := io.ReadAll(p)
			if root == nil {
				root = b
				continue
			}
			parts[strings.Trim(p.Header.Get("Content-ID"), "<>")] = b
		}
	} else if mt != "application/soap+xml" {
		return fmt.Errorf("content type %q is not SOAP 1.2", ctype)
	}
	s := string(root)
	i, j := strings.Index(s, "<soap:Body>"), strings.LastIndex(s, "</soap:Body>")
	if i < 0 || j < i {
		return fmt.Errorf("no soap 1.2 body in %s", s)
	}
	op := xopInclude.ReplaceAllStringFunc(s[i+len("<soap:Body>"):j], func(m string) string {
		cid, _ := url.PathUnescape(xopInclude.FindStringSubmatch(m)[1])
		return base64.StdEncoding.EncodeToString(parts[cid])
	})
	f := filepath.Join(v.t.TempDir(), "op.xml")
	if err := os.WriteFile(f, []byte(op), 0o600); err != nil {
		return err
	}
	out, err := exec.Command(v.xmllnt, "--noout", "--schema", v.schema, f).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s\n%s", out, op)
	}
	name := op[strings.Index(op, ":")+1 : strings.IndexAny(op, " >")]
	v.mu.Lock()
	v.ops[name]++
	v.mu.Unlock()
	return nil
}

func newSOAP(t *testing.T, e *env, v *soapValidating, accounts map[string]dpf.Credentials) *dpf.SOAPClient {
	c, err := dpf.NewSOAP(dpf.SOAPConfig{URL: e.url + dpf.SOAPPath, Accounts: accounts, HTTPClient: &http.Client{Transport: v}})
	require.NoError(t, err)
	return c
}

func newSOAPEnv(t *testing.T) (*env, *dpf.SOAPClient, *soapValidating) {
	e := newEnv(t, dpfsim.SOAPAccount{Username: "svarut-" + senderOrg, Password: "pw", Org: senderOrg})
	v := newSOAPValidating(t)
	return e, newSOAP(t, e, v, map[string]dpf.Credentials{senderOrg: {Username: "svarut-" + senderOrg, Password: "pw"}}), v
}

func TestSOAPClient_SendMTOMStatusesAndTypes(t *testing.T) {
	e, c, v := newSOAPEnv(t)
	f := e.shipment("ref-soap")
	f.ID = "8b1d6a3e-2f4c-4e5a-9b7c-1d2e3f4a5b6c"
	id, err := c.Send(e.ctx, senderOrg, f, false)
	require.NoError(t, err)
	assert.Equal(t, f.ID, id, "sendForsendelseMedId keeps the id we chose")
	got, ok := e.sim.DocumentData(id, "vedlegg.txt")
	require.True(t, ok)
	assert.Equal(t, "vedlegg", string(got), "svarut decrypts the MTOM attachment with its key")

	list, err := e.inn.New(e.ctx)
	require.NoError(t, err)
	require.Len(t, list, 1, "the bridge works for SOAP sends too")
	assert.Equal(t, senderOrg, list[0].SvarSendesTil.Orgnr)
	require.NoError(t, e.inn.Acknowledge(e.ctx, id))

	sts, err := c.Statuses(e.ctx, senderOrg, []string{id})
	require.NoError(t, err)
	require.Len(t, sts, 1)
	assert.Equal(t, "LEST", sts[0].Status)
	ids, err := c.IDsByEksternRef(e.ctx, senderOrg, "ref-soap")
	require.NoError(t, err)
	assert.Equal(t, []string{id}, ids)
	typer, err := c.ForsendelseTyper(e.ctx, senderOrg)
	require.NoError(t, err)
	assert.Equal(t, e.typer, typer)
	for _, op := range []string{"sendForsendelseMedId", "retrieveForsendelseStatuser", "retrieveForsendelseIdByEksternRef", "retreiveForsendelseTyper"} {
		assert.Positive(t, v.ops[op], "%s was not validated against the wsdl", op)
	}
}

func TestSOAPClient_Faults(t *testing.T) {
	tests := []struct {
		name      string
		reason    string
		retryable bool
	}{
		{"duplicate is final", "Duplikat forsendelse", false},
		{"same receiver is final", "Forsendelse med samme mottaker finnes", false},
		{"invalid content is final", "Ugyldig innhold i forsendelse", false},
		{"read error is final", "Feil under lesing av dokument", false},
		{"empty document is final", "Kan ikke lagre tomt dokument", false},
		{"anything else is retried", "Intern feil i SvarUt", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, c, _ := newSOAPEnv(t)
			e.sim.FailSOAP(tt.reason+" for 05050910077", 1)
			f := e.shipment("ref-" + tt.name)
			f.ID = "8b1d6a3e-2f4c-4e5a-9b7c-1d2e3f4a5b6d"
			_, err := c.Send(e.ctx, senderOrg, f, false)
			var fault *dpf.Fault
			require.ErrorAs(t, err, &fault)
			assert.Equal(t, tt.retryable, transport.Retryable(err), "%v", err)
			assert.NotContains(t, err.Error(), "05050910077", "a fault's text never carries a person number")
		})
	}
}

func TestSOAPClient_RetryAfterLostAnswerDoesNotSendTwice(t *testing.T) {
	e, c, _ := newSOAPEnv(t)
	e.sim.Faults().Add(dpfsim.Fault{Path: dpf.SOAPPath, After: true, Times: 1})
	f := e.shipment("ref-lost")
	f.ID = "8b1d6a3e-2f4c-4e5a-9b7c-1d2e3f4a5b6e"
	_, err := c.Send(e.ctx, senderOrg, f, false)
	require.Error(t, err)
	require.True(t, transport.Retryable(err))
	id, err := c.Send(e.ctx, senderOrg, f, true)
	require.NoError(t, err)
	assert.Equal(t, f.ID, id)
	assert.Equal(t, map[string]int{"ref-lost": 1}, e.sim.Deliveries())
}

func TestSOAPClient_AccountPerSender(t *testing.T) {
	e, _, v := newSOAPEnv(t)
	wrong := newSOAP(t, e, v, map[string]dpf.Credentials{senderOrg: {Username: "svarut-" + senderOrg, Password: "feil"}})
	_, err := wrong.ForsendelseTyper(e.ctx, senderOrg)
	require.ErrorIs(t, err, transport.ErrUnauthorized)
	_, err = wrong.ForsendelseTyper(e.ctx, receiverOrg)
	require.ErrorIs(t, err, dpf.ErrNoAccount, "no credentials for an org we do not send for")
}
