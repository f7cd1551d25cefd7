package main

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/efm-go/efm/integrasjonspunkt/store"
	"github.com/efm-go/efm/update"
	"github.com/efm-go/efm/update/manifest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const goodConfig = "../../integrasjonspunkt/config/testdata/good.properties"

func openStore(t *testing.T, dataDir string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), store.Config{Path: storePath(dataDir), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	return s
}

// migrateBeyond makes the store look migrated by a binary newer than this one.
func migrateBeyond(t *testing.T, s *store.Store) {
	t.Helper()
	require.NoError(t, s.Write(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 0)`, store.SchemaVersion()+1)
		return err
	}))
}

func TestSelfTest_AcceptsKnownStoreAndRefusesNewerSchema(t *testing.T) {
	t.Setenv("EFM_TEST_KEYSTORE_PASSWORD", "hemmelig")
	data := t.TempDir()

	out, code := runCLI(t, "self-test", "--config", goodConfig, "--data", data)
	require.Equal(t, exitOK, code, out)
	assert.Contains(t, out, "store schema 0, known up to "+strconv.Itoa(store.SchemaVersion()))
	_, err := os.Stat(storePath(data))
	assert.ErrorIs(t, err, os.ErrNotExist, "the self-test created a store")

	s := openStore(t, data) // the running daemon keeps it open during the preflight
	defer s.Close()
	out, code = runCLI(t, "self-test", "--config", goodConfig, "--data", data)
	require.Equal(t, exitOK, code, out)
	assert.Contains(t, out, "self-test ok")

	migrateBeyond(t, s)
	out, code = runCLI(t, "self-test", "--config", goodConfig, "--data", data)
	assert.Equal(t, exitFailure, code, out)
	assert.Contains(t, out, store.ErrSchemaTooNew.Error())
	assert.NotContains(t, out, "self-test ok")
	v, err := store.FileSchemaVersion(context.Background(), storePath(data))
	require.NoError(t, err)
	assert.Equal(t, store.SchemaVersion()+1, v, "the self-test changed the store")
}

func TestSnapshotBeforeSwap_OnlyWhenTheSchemaChangesAndKeepsTheNewest(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()

	p, err := snapshotBeforeSwap(ctx, data, "1.0.0", manifest.Release{Version: "1.1.0", SchemaVersion: store.SchemaVersion() + 1})
	require.NoError(t, err)
	assert.Empty(t, p, "snapshot of a store that does not exist")

	s := openStore(t, data)
	defer s.Close()
	p, err = snapshotBeforeSwap(ctx, data, "1.0.0", manifest.Release{Version: "1.0.1", SchemaVersion: store.SchemaVersion()})
	require.NoError(t, err)
	assert.Empty(t, p, "snapshot though the target keeps the schema")

	first, err := snapshotBeforeSwap(ctx, data, "1.0.0", manifest.Release{Version: "1.1.0", SchemaVersion: store.SchemaVersion() + 1})
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(data, "update", "pre-1.0.0-to-1.1.0.db"), first)
	v, err := store.FileSchemaVersion(ctx, first)
	require.NoError(t, err)
	assert.Equal(t, store.SchemaVersion(), v, "the snapshot is not the old schema")

	// The manifest does not say: a snapshot costs less than guessing wrong.
	migrateBeyond(t, s)
	second, err := snapshotBeforeSwap(ctx, data, "1.1.0", manifest.Release{Version: "1.2.0"})
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(data, "update", "pre-1.1.0-to-1.2.0.db"), second)
	v, err = store.FileSchemaVersion(ctx, second)
	require.NoError(t, err)
	assert.Equal(t, store.SchemaVersion()+1, v)
	_, err = os.Stat(first)
	assert.ErrorIs(t, err, os.ErrNotExist, "an older snapshot was kept")
}

func TestPrintStatus_NamesTheClock(t *testing.T) {
	var b strings.Builder
	printStatus(&b, update.Status{Current: "1.0.0", State: update.State{LastResult: update.ResultFailed, LastReason: update.ReasonClockBehind,
		LastError: "manifest refused: manifest issued in the future: check the clock: issued at ..."}})
	assert.Contains(t, b.String(), "clock_behind")
	assert.Contains(t, b.String(), "check the clock")
}
