package integrasjonspunkt

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/integrasjonspunkt/store"
)

func TestRecordHeartbeat_CountsUnfinishedPerService(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{Path: filepath.Join(t.TempDir(), "store.db"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO conversation (message_id, conversation_id, direction, service_identifier, status, finished, created_at, last_update) VALUES
			('a', 'c', 'OUTGOING', 'DPO', 'SENDT', 0, 1, 1), ('b', 'c', 'OUTGOING', 'DPO', 'OPPRETTET', 0, 1, 1),
			('c', 'c', 'OUTGOING', 'DPV', 'LEVERT', 1, 1, 1), ('d', 'c', 'INCOMING', 'DPO', 'INNKOMMENDE_MOTTATT', 0, 1, 1)`)
		return err
	}))
	key, err := events.NewPseudonymKey(make([]byte, 32))
	require.NoError(t, err)
	b, err := events.NewBuilder(events.BuilderConfig{InstallationID: events.NewID(), OrgNr: "910077473", Version: "1.0.0", Key: key})
	require.NoError(t, err)

	require.NoError(t, recordHeartbeat(ctx, st, b, nil))
	rows, err := st.Pending(ctx, 10, 1<<20)
	require.NoError(t, err)
	require.Len(t, rows, 1)
	var ev struct {
		Type       string                `json:"type"`
		Unfinished []events.ServiceCount `json:"unfinished"`
	}
	require.NoError(t, json.Unmarshal(rows[0].Body, &ev), string(rows[0].Body))
	assert.Contains(t, string(rows[0].Body), "installation.heartbeat")
	assert.Contains(t, string(rows[0].Body), `"DPO"`)
	assert.NotContains(t, string(rows[0].Body), `"DPV"`, "finished messages are not counted")
}
