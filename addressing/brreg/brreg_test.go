package brreg_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/addressing/brreg"
	"github.com/efm-go/efm/addressing/brreg/brregsim"
	"github.com/efm-go/efm/addressing/seed"
)

func TestLookup(t *testing.T) {
	s, err := seed.Default()
	require.NoError(t, err)
	sim, err := brregsim.New(brregsim.Options{Seed: s})
	require.NoError(t, err)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c, err := brreg.New(brreg.Config{BaseURL: srv.URL + "/enhetsregisteret/api"})
	require.NoError(t, err)
	ctx := context.Background()
	today := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)

	e, err := c.Lookup(ctx, "910079018")
	require.NoError(t, err)
	assert.Equal(t, "SVARVIK KOMMUNE", e.Navn)
	assert.Equal(t, "KOMM", e.Organisasjonsform.Kode)
	assert.Equal(t, []string{"Postboks 153"}, e.Address().Adresse)
	assert.False(t, e.Underenhet)

	e, err = c.Lookup(ctx, "910085018")
	require.NoError(t, err, "sub-units are found under /underenheter")
	assert.True(t, e.Underenhet)
	assert.Equal(t, "910079018", e.OverordnetEnhet)
	assert.NotNil(t, e.Address(), "beliggenhetsadresse or postadresse")

	e, err = c.Lookup(ctx, "910082000")
	require.ErrorIs(t, err, brreg.ErrRemoved)
	assert.Equal(t, "2019-12-31", e.Slettedato)

	e, err = c.Lookup(ctx, "910083007")
	require.NoError(t, err)
	d, deleted := e.DeletedOn(today)
	assert.True(t, deleted)
	assert.Equal(t, "2023-06-30", d.Format(time.DateOnly))
	_, deleted = e.DeletedOn(time.Date(2023, 6, 30, 12, 0, 0, 0, time.UTC))
	assert.True(t, deleted, "deleted on the day itself (project rule: on or before today)")
	_, deleted = e.DeletedOn(time.Date(2023, 6, 29, 23, 0, 0, 0, time.UTC))
	assert.False(t, deleted)

	e, err = c.Lookup(ctx, "910084003")
	require.NoError(t, err)
	assert.True(t, e.Distressed())

	_, err = c.Lookup(ctx, "910086006")
	require.ErrorIs(t, err, brreg.ErrNotFound, "absent from the register")
	assert.Equal(t, 2, sim.Requests("GET /enhetsregisteret/api/underenheter/{orgnr}"), "sub-units asked only after a main-unit 404")

	sim.FailNext("/enhetsregisteret/", 503, 1)
	_, err = c.Lookup(ctx, "910079018")
	require.ErrorIs(t, err, brreg.ErrUnavailable)
}
