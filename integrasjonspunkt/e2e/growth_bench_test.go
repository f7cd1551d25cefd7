package e2e_test

import (
	"crypto/rand"
	"database/sql"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/require"
)

// BenchmarkStoreGrowth measures what a delivered message leaves behind: a
// daemon delivers a first batch of 10 KB messages over DPO (to warm the
// store up), stops, then delivers a second batch and stops again. The growth
// of store.db plus the payload dir between the two stops, per message of the
// second batch, is what every further message costs on disk once it reached
// its final status (operations.md §3.2: ≤ 500 B of metadata, no payload).
//
//	go test -run '^$' -bench StoreGrowth -benchtime 1x ./integrasjonspunkt/e2e/
func BenchmarkStoreGrowth(b *testing.B) {
	const warm, batch, clients = 200, 1000, 8
	brokerSchedule(b, map[string]any{"kvitteringType": "none", "drop": []string{}})
	for b.Loop() {
		dir := b.TempDir()
		run := func(n int) {
			d := startDaemon(b, ownOrg, dir, map[string]string{"difi.move.queue.concurrency": "32", "efm.events.enabled": "true"})
			e := newEvents()
			subscribe(b, d, e)
			ids := sendEach(b, d, n, clients, func() ([]byte, map[string][]byte, string) {
				sbd, files, id := arkivmelding(peerOrg, 0)
				files["vedtak.pdf"] = make([]byte, 10<<10)
				rand.Read(files["vedtak.pdf"])
				return sbd, files, id
			})
			if missing := e.wait(ids, "LEVERT", 5*time.Minute); missing > 0 {
				b.Fatalf("%d of %d messages did not reach LEVERT", missing, n)
			}
			// The payload is removed after the commit of the final status,
			// which the webhook may overtake; the central log takes the
			// events in batches.
			for deadline := time.Now().Add(time.Minute); d.metric("efm_central_log_backlog_events") > 0 && time.Now().Before(deadline); {
				time.Sleep(200 * time.Millisecond)
			}
			time.Sleep(500 * time.Millisecond)
			d.stop()
		}
		run(warm)
		before := measureStore(b, dir)
		run(batch)
		after := measureStore(b, dir)
		b.ReportMetric(float64(after.file+after.payload-before.file-before.payload)/batch, "disk-B/msg")
		b.ReportMetric(float64(after.live-before.live)/batch, "live-B/msg")
		b.ReportMetric(float64(after.payload)/1024, "payload-KB")
		report := fmt.Sprintf("after %d+%d messages: store.db %d B (%d B in free pages), payload dir %d B in %d files",
			warm, batch, after.file, after.file-after.live, after.payload, after.payloadFiles)
		for _, t := range after.tables {
			report += fmt.Sprintf("\n  %-40s %10d B  %6.0f B/msg", t.name, t.bytes, float64(t.bytes)/(warm+batch))
		}
		b.Log(report)
		if keep := os.Getenv("EFM_GROWTH_KEEP"); keep != "" {
			// For a closer look with the sqlite3 shell.
			data, err := os.ReadFile(filepath.Join(dir, "store.db"))
			require.NoError(b, err)
			require.NoError(b, os.WriteFile(keep, data, 0o600))
		}
	}
}

type storeSize struct {
	file, live, payload int64
	payloadFiles        int
	tables              []tableSize
}

type tableSize struct {
	name  string
	bytes int64
}

// measureStore sizes a stopped daemon's store: the file, the pages in use,
// the payload files and, when SQLite was built with dbstat, each table and
// index.
func measureStore(b *testing.B, dir string) storeSize {
	b.Helper()
	var s storeSize
	fi, err := os.Stat(filepath.Join(dir, "store.db"))
	require.NoError(b, err)
	s.file = fi.Size()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "store.db")+"?mode=ro")
	require.NoError(b, err)
	defer db.Close()
	var pages, free, size int64
	require.NoError(b, db.QueryRow(`PRAGMA page_count`).Scan(&pages))
	require.NoError(b, db.QueryRow(`PRAGMA freelist_count`).Scan(&free))
	require.NoError(b, db.QueryRow(`PRAGMA page_size`).Scan(&size))
	s.live = (pages - free) * size
	if rows, err := db.Query(`SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC`); err == nil {
		for rows.Next() {
			var t tableSize
			require.NoError(b, rows.Scan(&t.name, &t.bytes))
			s.tables = append(s.tables, t)
		}
		rows.Close()
	}
	filepath.WalkDir(filepath.Join(dir, "payload"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				s.payload += fi.Size()
				s.payloadFiles++
			}
		}
		return nil
	})
	return s
}
