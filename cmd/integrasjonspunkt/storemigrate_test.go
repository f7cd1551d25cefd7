package main

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/integrasjonspunkt/store"
	"github.com/efm-go/efm/internal/pgtest"
)

func TestStoreMigrate_RefusesOtherDatabases(t *testing.T) {
	out, code := runCLI(t, "store", "migrate", "--data", t.TempDir(), "--to", "jdbc:mysql://db:3306/efm")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, out, "jdbc:mysql is not supported: jdbc:postgresql://host[:port]/database")
}

func TestStoreMigrate_CopiesAndCounts(t *testing.T) {
	pgtest.Need(t)
	srv, err := pgtest.Start(pgtest.Options{})
	require.NoError(t, err)
	defer srv.Stop()
	data := t.TempDir()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{Path: filepath.Join(data, "store.db"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	require.NoError(t, st.Update(ctx, func(tx *store.Tx) error {
		return tx.InsertConversation(&store.Conversation{MessageID: "m1", ConversationID: "c1", Direction: "OUTGOING", Status: "OPPRETTET", LastUpdate: time.UnixMilli(1)})
	}))
	require.NoError(t, st.Close())

	db := srv.CreateDB(t)
	out, code := runCLI(t, "store", "migrate", "--data", data, "--to", srv.JDBC(db), "--username", pgtest.Superuser)
	require.Equal(t, exitOK, code, out)
	assert.Contains(t, out, "store migrated")
	assert.Regexp(t, `conversation\s+1\s+1`, out)
}
