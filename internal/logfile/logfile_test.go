package logfile

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFile_RotatesAndKeepsAtMostKeep(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "integrasjonspunkt.log")
	l, err := Open(path, 100, 2)
	require.NoError(t, err)
	line := append(bytes.Repeat([]byte("x"), 39), '\n') // 40 bytes
	for range 10 {
		_, err := l.Write(line)
		require.NoError(t, err)
	}
	require.NoError(t, l.Close())
	names, _ := filepath.Glob(path + "*")
	assert.ElementsMatch(t, []string{path, path + ".1", path + ".2"}, names)
	for _, n := range names {
		st, err := os.Stat(n)
		require.NoError(t, err)
		assert.LessOrEqual(t, st.Size(), int64(100), n)
		assert.Zero(t, st.Size()%40, "a line was split across files: %s", n)
	}

	l, err = Open(path, 100, 2)
	require.NoError(t, err)
	defer l.Close()
	st, _ := os.Stat(path)
	before := st.Size()
	_, err = l.Write(line)
	require.NoError(t, err)
	st, _ = os.Stat(path)
	assert.True(t, st.Size() == before+40 || st.Size() == 40, "reopen appends or rotates, never truncates a partial file")
}
