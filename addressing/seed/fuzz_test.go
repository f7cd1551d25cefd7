package seed

import (
	"encoding/json"
	"reflect"
	"testing"
)

func FuzzParse(f *testing.F) {
	f.Add(DefaultJSON())
	f.Add([]byte(`{"printProvider":"984661185","organisations":[{"organisasjonsnummer":"984661185","navn":"P","organisasjonsform":"AS","certificate":true}],"persons":[]}`))
	f.Add([]byte(`{"printProvider":"984661185","organisations":[{"organisasjonsnummer":"984661185","navn":"P","organisasjonsform":"AS","certificate":true,"herId":"8142519"}],"persons":[{"personidentifikator":"06068700602","fastlege":"8142519","folkeregister":{"fornavn":"A","etternavn":"B"}}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"persons":[{"personidentifikator":"06068700602"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			return
		}
		// Whatever parses is valid and survives a round trip unchanged.
		if err := s.Validate(); err != nil {
			t.Fatalf("parsed seed fails validation: %v", err)
		}
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("re-encoded seed does not parse: %v", err)
		}
		if !reflect.DeepEqual(normal(s), normal(again)) {
			t.Fatal("round trip changed the seed")
		}
	})
}

// normal makes nil and empty slices compare equal, which JSON cannot tell apart.
func normal(s *Seed) *Seed {
	b, _ := json.Marshal(s)
	var n Seed
	_ = json.Unmarshal(b, &n)
	return &n
}
