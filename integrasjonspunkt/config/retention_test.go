package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLoad_RetentionKeys: config check takes the efm.retention.* keys, with
// the reference's defaults, days as Spring writes them, and refuses what is
// not a duration.
func TestLoad_RetentionKeys(t *testing.T) {
	base := map[string]string{"difi.move.org.number": "910077473", "difi.move.org.keystore.path": "k.p12",
		"difi.move.org.keystore.alias": "a", "difi.move.org.keystore.password": "pw"}
	c, warns, err := Load(Source{Overrides: base})
	require.NoError(t, err)
	assert.Equal(t, 17520*time.Hour, c.Duration("efm.retention.history", 0))
	assert.Equal(t, 90*24*time.Hour, c.Duration("efm.retention.incoming-unfetched", 0))
	assert.Equal(t, time.Duration(0), c.Duration("efm.retention.outgoing-payload", time.Hour))
	assert.Equal(t, 24*time.Hour, c.Duration("efm.retention.interval", 0))

	ov := map[string]string{"efm.retention.history": "36500d", "efm.retention.incoming-unfetched": "30d",
		"efm.retention.outgoing-payload": "720h", "efm.retention.interval": "12h"}
	for k, v := range base {
		ov[k] = v
	}
	c, warns, err = Load(Source{Overrides: ov})
	require.NoError(t, err)
	for _, w := range warns {
		assert.NotContains(t, w.String(), "efm.retention", "a known key")
	}
	assert.Equal(t, 36500*24*time.Hour, c.Duration("efm.retention.history", 0))
	assert.Equal(t, 720*time.Hour, c.Duration("efm.retention.outgoing-payload", 0))

	for _, k := range []string{"efm.retention.history", "efm.retention.incoming-unfetched", "efm.retention.outgoing-payload", "efm.retention.interval"} {
		ov[k] = "two years"
	}
	_, _, err = Load(Source{Overrides: ov})
	ps := problems(t, err)
	for _, k := range []string{"efm.retention.history", "efm.retention.incoming-unfetched", "efm.retention.outgoing-payload", "efm.retention.interval"} {
		if assert.Contains(t, ps, k) {
			assert.Contains(t, ps[k].Expected, "duration", k)
		}
	}
}
