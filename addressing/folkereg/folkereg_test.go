package folkereg_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/addressing/folkereg"
	"github.com/efm-go/efm/addressing/folkereg/folkeregsim"
	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/addressing/seed"
)

func TestPerson(t *testing.T) {
	s, err := seed.Default()
	require.NoError(t, err)
	sim, err := folkeregsim.New(folkeregsim.Options{Seed: s, APIKey: "k"})
	require.NoError(t, err)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c, err := folkereg.New(folkereg.Config{BaseURL: srv.URL, APIKey: "k"})
	require.NoError(t, err)
	ctx := context.Background()
	pid := func(s string) ident.PersonID { p, err := ident.ParsePersonID(s); require.NoError(t, err); return p }

	p, err := c.Person(ctx, pid("02020610037"))
	require.NoError(t, err)
	assert.Equal(t, "Per Olav Postkasseløs", p.Navn.Full())
	assert.Equal(t, "3015", p.Postadresse.Postnummer)

	p, err = c.Person(ctx, pid("05050910077"))
	require.NoError(t, err)
	assert.Nil(t, p.Postadresse, "secret address")

	_, err = c.Person(ctx, pid("27127000293"))
	require.NoError(t, err)

	wrong, err := folkereg.New(folkereg.Config{BaseURL: srv.URL, APIKey: "nope"})
	require.NoError(t, err)
	_, err = wrong.Person(ctx, pid("02020610037"))
	require.ErrorIs(t, err, folkereg.ErrUnavailable)
	assert.NotContains(t, err.Error(), "02020610037")

	sim.FailNext("/person/", 503, 1)
	_, err = c.Person(ctx, pid("02020610037"))
	require.ErrorIs(t, err, folkereg.ErrUnavailable)
	assert.NotContains(t, err.Error(), "02020610037")
}
