package dpo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/efm-go/efm/transport/altinn"
	"github.com/efm-go/efm/transport/altinn/altinnsim"
	"github.com/efm-go/efm/transport/dpo"
	"github.com/stretchr/testify/require"
)

func transportIs(err, target error) bool { return errors.Is(err, target) }

func (e *env) exchanged(t *testing.T, su systemUser) *altinn.Exchanger {
	ex, err := altinn.New(altinn.Config{URL: e.srv.URL + altinnsim.ExchangePath, Maskinporten: su})
	require.NoError(t, err)
	return ex
}

func doJSON(t *testing.T, ex *altinn.Exchanger, method, url, ctype string, body []byte, out any) {
	t.Helper()
	tok, err := ex.Token(context.Background(), dpo.ScopeWrite)
	require.NoError(t, err)
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	if out != nil {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
	}
}
