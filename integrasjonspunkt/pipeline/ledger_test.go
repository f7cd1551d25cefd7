package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLedger_TornLastLine: a daemon killed in the middle of a write leaves
// part of a line; the entries before it are read, the torn change is not,
// and changes after the restart are read back whole.
func TestLedger_TornLastLine(t *testing.T) {
	dir := t.TempDir()
	l, err := openLedger(dir, false)
	require.NoError(t, err)
	kept, torn := uuid.NewString(), uuid.NewString()
	_, err = l.update(kept, func(e *entry) { e.Channel, e.Checkpoint = "DPO", "transfer-1" })
	require.NoError(t, err)
	l.close()
	f, err := os.OpenFile(filepath.Join(dir, ledgerLog), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"id":"` + torn + `","e":{"channel":"DPO","checkp`)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	l, err = openLedger(dir, false)
	require.NoError(t, err)
	e, err := l.get(kept)
	require.NoError(t, err)
	assert.Equal(t, "transfer-1", e.Checkpoint)
	e, err = l.get(torn)
	require.NoError(t, err)
	assert.Zero(t, e, "a torn change is not read")

	after := uuid.NewString()
	_, err = l.update(after, func(e *entry) { e.Channel, e.Checkpoint = "DPO", "transfer-2" })
	require.NoError(t, err)
	l.close()
	l, err = openLedger(dir, false)
	require.NoError(t, err)
	e, err = l.get(after)
	require.NoError(t, err)
	assert.Equal(t, "transfer-2", e.Checkpoint, "a change after the torn line is read whole")
}

// TestLedger_ReadsTheFilePerMessageFormat: entries written by a version
// that kept a file per message are taken over, and the files go.
func TestLedger_ReadsTheFilePerMessageFormat(t *testing.T) {
	dir := t.TempDir()
	old := strings.ToLower(uuid.NewString())
	require.NoError(t, os.WriteFile(filepath.Join(dir, old+".json"),
		[]byte(`{"channel":"DPV","reference":"corr-1","tracking":true,"attempts":2,"updated":"2026-01-02T03:04:05Z"}`), 0o600))
	l, err := openLedger(dir, false)
	require.NoError(t, err)
	e, err := l.get(old)
	require.NoError(t, err)
	assert.Equal(t, entry{Channel: "DPV", Reference: "corr-1", Tracking: true, Attempts: 2, Updated: e.Updated}, e)
	ts, err := l.tracking()
	require.NoError(t, err)
	assert.Contains(t, ts, old)
	assert.NoFileExists(t, filepath.Join(dir, old+".json"))

	l.close()
	l, err = openLedger(dir, false)
	require.NoError(t, err)
	e, err = l.get(old)
	require.NoError(t, err)
	assert.Equal(t, "corr-1", e.Reference, "kept in the log")
}

// TestLedger_Compacts: a busy ledger's log is rewritten with the live
// entries only, and nothing live is lost on the way.
func TestLedger_Compacts(t *testing.T) {
	dir := t.TempDir()
	l, err := openLedger(dir, false)
	require.NoError(t, err)
	live := uuid.NewString()
	_, err = l.update(live, func(e *entry) { e.Channel, e.Checkpoint = "DPO", "live" })
	require.NoError(t, err)
	for range compactAt {
		id := uuid.NewString()
		_, err := l.update(id, func(e *entry) { e.Checkpoint = "x" })
		require.NoError(t, err)
		require.NoError(t, l.remove(id))
	}
	l.close()
	b, err := os.ReadFile(filepath.Join(dir, ledgerLog))
	require.NoError(t, err)
	assert.Less(t, strings.Count(string(b), "\n"), compactAt, "rewritten along the way")
	l, err = openLedger(dir, false)
	require.NoError(t, err)
	e, err := l.get(live)
	require.NoError(t, err)
	assert.Equal(t, "live", e.Checkpoint)
	ts, err := l.tracking()
	require.NoError(t, err)
	assert.Empty(t, ts)
	assert.Len(t, l.entries, 1)
}

// FuzzLedgerLog: whatever the log holds (a torn line, another program's
// bytes), the ledger opens, and a change made then is read back.
func FuzzLedgerLog(f *testing.F) {
	id := "5f0b3a6e-2d7c-4d4e-9a39-6a1f0a3c1b01"
	f.Add([]byte(`{"id":"` + id + `","e":{"channel":"DPO","checkpoint":"t-1","updated":"2026-01-02T03:04:05Z"}}` + "\n"))
	f.Add([]byte(`{"id":"` + id + `","rm":true}` + "\n" + `{"id":"` + id + `","e":{"chan`))
	f.Add([]byte("\x00\n\n{}\n"))
	f.Fuzz(func(t *testing.T, log []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, ledgerLog), log, 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := openLedger(dir, false)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		if _, err := l.update(id, func(e *entry) { e.Checkpoint = "fresh" }); err != nil {
			t.Fatalf("update: %v", err)
		}
		l.close()
		l, err = openLedger(dir, false)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer l.close()
		if e, _ := l.get(id); e.Checkpoint != "fresh" {
			t.Fatalf("change lost: %+v", e)
		}
	})
}

// TestLedger_SharedDir: the daemons of a group share the dir, and the one
// that takes over a killed daemon's message must find its checkpoint; a log
// a daemon left there running alone is taken over as files.
func TestLedger_SharedDir(t *testing.T) {
	dir := t.TempDir()
	solo, err := openLedger(dir, false)
	require.NoError(t, err)
	fromSolo := uuid.NewString()
	_, err = solo.update(fromSolo, func(e *entry) { e.Channel, e.Checkpoint = "DPO", "transfer-0" })
	require.NoError(t, err)
	solo.close()

	a, err := openLedger(dir, true)
	require.NoError(t, err)
	b, err := openLedger(dir, true)
	require.NoError(t, err)
	e, err := b.get(fromSolo)
	require.NoError(t, err)
	assert.Equal(t, "transfer-0", e.Checkpoint, "the log of a daemon alone is read")
	assert.NoFileExists(t, filepath.Join(dir, ledgerLog))

	id := uuid.NewString()
	_, err = a.update(id, func(e *entry) { e.Channel, e.Checkpoint = "DPO", "transfer-1" })
	require.NoError(t, err)
	e, err = b.get(id)
	require.NoError(t, err)
	assert.Equal(t, "transfer-1", e.Checkpoint, "another daemon sees the checkpoint at once")
	require.NoError(t, b.remove(id))
	e, err = a.get(id)
	require.NoError(t, err)
	assert.Zero(t, e)
}
