package ident

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseOrgNumber(t *testing.T) {
	tests := []struct {
		name, in string
		wantErr  error
	}{
		{"sandbox sender", "910077473", nil},
		{"dpo archive", "910075918", nil},
		{"dpo and einnsyn", "910076787", nil},
		{"einnsyn", "810074582", nil},
		{"digipost", "984661185", nil},
		{"fixture 987464291", "987464291", nil},
		{"digdir", "991825827", nil},
		{"fixture 974720760", "974720760", nil},
		{"fixture 314240979", "314240979", nil},
		{"fixture 311780735", "311780735", nil},
		{"fixture 123123123", "123123123", nil},
		{"with prefix", "0192:910075918", nil},
		{"api doc example 987654321", "987654321", ErrOrgCheckDigit},
		{"api doc example 123456789", "123456789", ErrOrgCheckDigit},
		{"reference dpf fixture 910075924", "910075924", ErrOrgCheckDigit},
		{"eight digits", "91007591", ErrUnrecognised},
		{"letters", "91007591a", ErrUnrecognised},
		{"empty", "", ErrUnrecognised},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOrgNumber(tt.in)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				assert.ErrorIs(t, err, ErrInvalid)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, strings.TrimPrefix(tt.in, "0192:"), got.String())
		})
	}
}

func TestParsePersonID(t *testing.T) {
	tests := []struct {
		name, in       string
		allowSynthetic bool
		wantErr        error
		d, h, synth    bool
	}{
		{"fødselsnummer 09118532322", "09118532322", false, nil, false, false, false},
		{"active mailbox citizen", "06068700602", false, nil, false, false, false},
		{"fixture 27126900142", "27126900142", false, nil, false, false, false},
		{"fixture 27127000293", "27127000293", false, nil, false, false, false},
		{"tenor synthetic allowed", "17912099997", true, nil, false, false, true},
		{"tenor synthetic refused", "17912099997", false, ErrSyntheticNotAllowed, false, false, false},
		{"tenor synthetic 20914695016", "20914695016", true, nil, false, false, true},
		{"d-number", "41018510187", false, nil, true, false, false},
		{"h-number", "01418510095", false, nil, false, true, false},
		{"reference mock dpv citizen", "10068700602", false, ErrPersonCheckDigits, false, false, false},
		{"12345678901", "12345678901", false, ErrPersonCheckDigits, false, false, false},
		{"api doc 01017012345", "01017012345", false, ErrPersonCheckDigits, false, false, false},
		{"ten digits", "0606870060", false, ErrUnrecognised, false, false, false},
		{"nhn synthetic", "15669010092", true, nil, false, false, true},
		{"digdir synthetic refused", "05218510045", false, ErrSyntheticNotAllowed, false, false, false},
		{"bad date", "00000000000", false, ErrPersonDate, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Policy{AllowSynthetic: tt.allowSynthetic}.ParsePersonID(tt.in)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.ErrorIs(t, err, ErrInvalid)
				assert.NotContains(t, err.Error(), tt.in, "error strings must not carry the number")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.in, got.Reveal())
			assert.Equal(t, tt.d, got.IsDNumber(), "D-number")
			assert.Equal(t, tt.h, got.IsHNumber(), "H-number")
			assert.Equal(t, tt.synth, got.IsSynthetic(), "synthetic")
		})
	}
}

func TestParseID(t *testing.T) {
	tests := []struct {
		name, in    string
		kind        Kind
		primary     string
		part        string
		wantErr     error
		stringForms string
	}{
		{"bare org", "910075918", KindOrganisation, "910075918", "", nil, "910075918"},
		{"iso org", "0192:910075918", KindOrganisation, "910075918", "", nil, "910075918"},
		{"iso org with source indicator", "0192:910075918:1", KindOrganisation, "910075918", "", nil, "910075918"},
		{"on behalf of", "0192:910077473:910075918", KindOrganisation, "910077473", "910075918", nil, "0192:910077473:910075918"},
		{"on behalf of with indicator", "0192:910077473:910075918:0", KindOrganisation, "910077473", "910075918", nil, "0192:910077473:910075918"},
		{"person", "06068700602", KindPerson, "06068700602", "", nil, Mask},
		{"fiks io", "3F0C6B1E-1234-4abc-8def-0123456789ab", KindFiksIO, "3f0c6b1e-1234-4abc-8def-0123456789ab", "", nil, "3f0c6b1e-1234-4abc-8def-0123456789ab"},
		{"her-id", "her-id:8143154", KindHerID, "her-id:8143154", "", nil, "her-id:8143154"},
		{"fastlege", "fastlege-for:06068700602", KindFastlege, "fastlege-for:06068700602", "", nil, "fastlege-for:" + Mask},
		{"other icd", "9908:910075918", 0, "", "", ErrUnsupportedICD, ""},
		{"bad org in iso", "0192:910075924", 0, "", "", ErrOrgCheckDigit, ""},
		{"bad part", "0192:910077473:910075924", 0, "", "", ErrOrgCheckDigit, ""},
		{"bad person", "10068700602", 0, "", "", ErrPersonCheckDigits, ""},
		{"bad fastlege", "fastlege-for:10068700602", 0, "", "", ErrPersonCheckDigits, ""},
		{"garbage", "hello", 0, "", "", ErrUnrecognised, ""},
		{"ten digits", "1234567890", 0, "", "", ErrUnrecognised, ""},
		{"empty her-id", "her-id:", 0, "", "", ErrUnrecognised, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := ParseID(tt.in)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.ErrorIs(t, err, ErrInvalid)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.kind, id.Kind())
			assert.Equal(t, tt.primary, id.RevealPrimary())
			assert.Equal(t, tt.stringForms, id.String())
			part, ok := id.Part()
			assert.Equal(t, tt.part != "", ok)
			assert.Equal(t, tt.part, string(part))
		})
	}
}

func TestPersonID_NeverPrintsNumber(t *testing.T) {
	const n = "06068700602"
	pid, err := ParsePersonID(n)
	require.NoError(t, err)
	id, err := ParseID(n)
	require.NoError(t, err)

	type holder struct {
		Receiver PersonID
		ID       ID
		Ptr      *PersonID
	}
	h := holder{Receiver: pid, ID: id, Ptr: &pid}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%-v"} {
		outs = append(outs, fmt.Sprintf(verb, pid), fmt.Sprintf(verb, id), fmt.Sprintf(verb, h), fmt.Sprintf(verb, &h))
	}
	outs = append(outs, fmt.Sprint(pid, id), fmt.Sprintln(h), pid.String(), pid.GoString(), id.GoString())
	js, err := json.Marshal(h)
	require.NoError(t, err)
	outs = append(outs, string(js))
	js, err = json.Marshal(map[string]any{"p": pid, "i": id})
	require.NoError(t, err)
	outs = append(outs, string(js))

	var buf bytes.Buffer
	for _, hnd := range []slog.Handler{slog.NewJSONHandler(&buf, nil), slog.NewTextHandler(&buf, nil)} {
		slog.New(hnd).Info("x", "pid", pid, "id", id, "holder", h)
	}
	outs = append(outs, buf.String())
	outs = append(outs, errors.New(fmt.Sprint(pid)).Error())

	for _, o := range outs {
		assert.NotContains(t, o, n)
		assert.NotContains(t, o, fmt.Sprintf("%x", n))
	}
	assert.Contains(t, strings.Join(outs, ""), Mask)
	assert.Equal(t, n, pid.Reveal())
}

func TestLooksLikePersonNumber(t *testing.T) {
	for _, s := range []string{"09118532322", "17912099997", "06068700602", "27126900142", "27127000293", "20914695016"} {
		assert.True(t, LooksLikePersonNumber(s), s)
	}
	for _, s := range []string{"10068700602", "12345678901", "01017012345", "0606870060", "060687006021", "0606870060a", "", "910075918"} {
		assert.False(t, LooksLikePersonNumber(s), s)
	}
}

func TestErrorsWrapInvalid(t *testing.T) {
	for _, e := range []error{ErrUnrecognised, ErrUnsupportedICD, ErrOrgCheckDigit, ErrPersonCheckDigits, ErrPersonDate, ErrSyntheticNotAllowed} {
		assert.ErrorIs(t, e, ErrInvalid)
	}
	assert.Contains(t, ErrSyntheticNotAllowed.Error(), "difi.move.identifier.synthetic.allow")
}
