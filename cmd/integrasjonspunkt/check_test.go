package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/integrasjonspunkt/check"
	"github.com/efm-go/efm/internal/sandbox"
)

func TestCheck_AgainstTheSandbox(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	sb, err := sandbox.Start(ctx, sandbox.Options{Dir: filepath.Join(dir, "sandbox"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { cancel(); sb.Close() })
	var props strings.Builder
	for k, v := range sb.Overrides {
		props.WriteString(k + "=" + strings.ReplaceAll(v, `\`, `\\`) + "\n")
	}
	file := filepath.Join(dir, "integrasjonspunkt-local.properties")
	require.NoError(t, os.WriteFile(file, []byte(props.String()), 0o600))
	data := filepath.Join(dir, "data")

	out, code := runCLI(t, "check", "--config", file, "--data", data)
	assert.Equal(t, exitOK, code, out)
	assert.Contains(t, out, "OK    maskinporten")
	assert.Contains(t, out, "OK    altinn broker (DPO)")
	last := check.Last(data)
	require.NotNil(t, last, "the report is kept for the status page")
	assert.True(t, last.OK())

	out, code = runCLI(t, "check", "--config", file, "--data", data, "dpv")
	assert.Equal(t, exitOK, code, out)
	assert.NotContains(t, out, "DPO")

	out, code = runCLI(t, "check", "--config", file, "--data", data, "DPX")
	assert.Equal(t, exitUsage, code, out)
	assert.Contains(t, out, `unknown channel "DPX"`)
}
