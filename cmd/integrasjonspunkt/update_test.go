package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/efm-go/efm/integrasjonspunkt/store"
	"github.com/efm-go/efm/internal/buildinfo"
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

// The version rolled back to finds its store migrated by the version it was
// rolled back from: it puts the pre-update snapshot back and opens that,
// instead of refusing its store at every start.
func TestRestoreAfterRollback_PutsTheSnapshotBack(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	upd, err := update.New(update.Config{DataDir: data, CurrentVersion: buildinfo.Version, Mode: update.ModeOff, Logger: log})
	require.NoError(t, err)
	writeState := func(phase update.Phase) {
		t.Helper()
		b, err := json.Marshal(update.State{Phase: phase, From: buildinfo.Version, To: "9.9.9"})
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Join(data, "update"), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(data, "update", "state.json"), b, 0o600))
	}
	accept := func(s *store.Store, id string) {
		t.Helper()
		require.NoError(t, s.Update(ctx, func(tx *store.Tx) error {
			return tx.InsertConversation(&store.Conversation{MessageID: id, ConversationID: id, Direction: "OUTGOING", Status: "OPPRETTET", LastUpdate: time.UnixMilli(1_700_000_000_000)})
		}))
	}

	s := openStore(t, data)
	accept(s, "before-the-update")
	_, err = snapshotBeforeSwap(ctx, data, buildinfo.Version, manifest.Release{Version: "9.9.9", SchemaVersion: store.SchemaVersion() + 1})
	require.NoError(t, err)
	migrateBeyond(t, s) // what 9.9.9 did before it failed its probation
	accept(s, "during-probation")
	require.NoError(t, s.Close())

	writeState(update.PhaseProbation) // still on probation: not this start's business
	detail, err := restoreAfterRollback(ctx, upd, data, log)
	require.NoError(t, err)
	assert.Empty(t, detail)

	writeState(update.PhaseRolledBack)
	detail, err = restoreAfterRollback(ctx, upd, data, log)
	require.NoError(t, err)
	assert.Contains(t, detail, "1 message(s) accepted")
	s = openStore(t, data) // refused with ErrSchemaTooNew before the restore
	ok, err := s.ConversationExists(ctx, "before-the-update")
	require.NoError(t, err)
	assert.True(t, ok)
	require.NoError(t, s.Close())
	st, err := upd.Status()
	require.NoError(t, err)
	assert.Contains(t, st.State.LastError, "store restored", "update status does not say the store was restored")
	v, err := store.FileSchemaVersion(ctx, filepath.Join(data, "update", "failed-9.9.9.db"))
	require.NoError(t, err)
	assert.Equal(t, store.SchemaVersion()+1, v)

	detail, err = restoreAfterRollback(ctx, upd, data, log)
	require.NoError(t, err)
	assert.Empty(t, detail, "a second start restored again")

	// Without the snapshot the daemon says what to do instead of only refusing.
	s = openStore(t, data)
	migrateBeyond(t, s)
	require.NoError(t, s.Close())
	require.NoError(t, os.Remove(filepath.Join(data, "update", "pre-"+buildinfo.Version+"-to-9.9.9.db")))
	_, err = restoreAfterRollback(ctx, upd, data, log)
	assert.ErrorIs(t, err, store.ErrSchemaTooNew)
	assert.ErrorContains(t, err, "restore the store from a backup")
}
