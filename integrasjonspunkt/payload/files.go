package payload

import (
	"encoding/hex"
	"fmt"
	"os"
	"time"
)

// Files lists the names of the files last written before t, for the
// retention job to find files no record refers to any more (a crash
// between a commit and the removal that follows it). A file being written
// now is newer than t, so it is never listed.
func (s *Store) Files(before time.Time) ([]string, error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("listing payload files: %w", err)
	}
	var out []string
	for _, de := range des {
		if _, err := hex.DecodeString(de.Name()); err != nil || len(de.Name()) != 32 || !de.Type().IsRegular() {
			continue
		}
		fi, err := de.Info()
		if err != nil || !fi.ModTime().Before(before) {
			continue
		}
		out = append(out, de.Name())
	}
	return out, nil
}
