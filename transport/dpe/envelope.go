package dpe

import (
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/efm-go/efm/transport"
)

// envelope is the Service Bus message body (spec channels.md §7.3).
type envelope struct {
	SBD  json.RawMessage `json:"sbd"`
	ASiC *string         `json:"asic"`
}

// EncodeEnvelope builds the body of a Service Bus message: the SBD and the
// CMS as base64 of its base64 text (the reference base64-encodes the CMS into
// a byte array, which its JSON mapper encodes again). cms nil means no files.
func EncodeEnvelope(sbd, cms []byte) ([]byte, error) {
	if !json.Valid(sbd) {
		return nil, fmt.Errorf("%w: sbd is not json", transport.ErrMalformed)
	}
	env := envelope{SBD: sbd}
	if cms != nil {
		inner := base64.StdEncoding.EncodeToString(cms)
		outer := base64.StdEncoding.EncodeToString([]byte(inner))
		env.ASiC = &outer
	}
	return json.Marshal(env)
}

// DecodeEnvelope reads a Service Bus message body back into the SBD, its
// header and the CMS (nil when the message has no files). Any failure is
// transport.ErrMalformed: the message is completed and discarded.
func DecodeEnvelope(body []byte) (sbd []byte, h transport.Header, cms []byte, err error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, transport.Header{}, nil, fmt.Errorf("%w: service bus body: %v", transport.ErrMalformed, err)
	}
	if len(env.SBD) == 0 || string(env.SBD) == "null" {
		return nil, transport.Header{}, nil, fmt.Errorf("%w: service bus body without sbd", transport.ErrMalformed)
	}
	h, err = transport.ParseHeader(env.SBD)
	if err != nil {
		return nil, transport.Header{}, nil, fmt.Errorf("reading service bus sbd: %w", err)
	}
	if env.ASiC != nil {
		inner, err := base64.StdEncoding.DecodeString(*env.ASiC)
		if err != nil {
			return nil, transport.Header{}, nil, fmt.Errorf("%w: asic outer base64: %v", transport.ErrMalformed, err)
		}
		cms, err = base64.StdEncoding.DecodeString(string(inner))
		if err != nil {
			return nil, transport.Header{}, nil, fmt.Errorf("%w: asic inner base64: %v", transport.ErrMalformed, err)
		}
		if cms == nil {
			cms = []byte{}
		}
	}
	return env.SBD, h, cms, nil
}
