package elma_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/addressing/elma"
	"github.com/efm-go/efm/addressing/elma/elmasim"
	"github.com/efm-go/efm/addressing/process"
	"github.com/efm-go/efm/addressing/seed"
)

func TestLookup(t *testing.T) {
	s, err := seed.Default()
	require.NoError(t, err)
	sim, err := elmasim.New(elmasim.Options{Seed: s})
	require.NoError(t, err)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c, err := elma.New(elma.Config{BaseURL: srv.URL})
	require.NoError(t, err)
	ctx := context.Background()

	docs, err := c.DocumentTypes(ctx, "910075918")
	require.NoError(t, err)
	assert.Equal(t, []string{process.DocArkivmelding, process.DocArkivmeldingKvittering}, docs)

	reg, err := c.Lookup(ctx, "910075918", []string{process.DocArkivmelding, process.DocPublisering})
	require.NoError(t, err)
	assert.Equal(t, []string{
		"urn:no:difi:profile:arkivmelding:planByggOgGeodata:ver1.0", "urn:no:difi:profile:arkivmelding:helseSosialOgOmsorg:ver1.0",
		process.Administrasjon, "urn:no:difi:profile:arkivmelding:oppvekstOgUtdanning:ver1.0",
	}, reg[process.DocArkivmelding], "the §6 example seed")
	_, listed := reg[process.DocPublisering]
	assert.False(t, listed)

	reg, err = c.Lookup(ctx, "910081004", []string{process.DocArkivmelding})
	require.NoError(t, err, "a participant unknown to the SMP is 'not registered', not an error")
	assert.Empty(t, reg)

	_, err = c.Processes(ctx, "910075918", process.DocPublisering)
	require.ErrorIs(t, err, elma.ErrNotRegistered)

	sim.FailNext("/", 503, 1)
	_, err = c.Lookup(ctx, "910075918", []string{process.DocArkivmelding})
	require.ErrorIs(t, err, elma.ErrUnavailable)

	assert.Equal(t, "iso6523-actorid-upis%3A%3A0192%3A910075918", elma.ParticipantSegment("910075918"))
	assert.Equal(t, 2, sim.Requests("GET /{participant}/services/{doctype}"))
}
