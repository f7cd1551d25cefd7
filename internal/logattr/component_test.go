package logattr

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOneComponent_InnermostWinsOnce(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(OneComponent(slog.NewJSONHandler(&buf, nil)))
	log.With(Component("central-log"), Service("DPO")).With(Component("events/shipper")).Info("shipped", MessageID("m1"))
	log.With(Component("api")).WithGroup("req").Info("served", slog.String("route", "/x"))
	log.Info("bare")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 3)
	assert.Equal(t, 1, strings.Count(lines[0], `"component"`), lines[0])
	var first map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
	assert.Equal(t, "events/shipper", first["component"])
	assert.Equal(t, "DPO", first["service"])
	assert.Equal(t, "m1", first["message_id"])

	assert.Contains(t, lines[1], `"component":"api"`)
	assert.Contains(t, lines[1], `"req":{"route":"/x"}`)
	assert.NotContains(t, lines[2], "component")
}
