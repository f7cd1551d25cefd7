package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPostgresURL(t *testing.T) {
	for jdbc, want := range map[string]string{
		"jdbc:postgresql://db.kommune.no:5432/efm":                     "postgres://u:p%40ss@db.kommune.no:5432/efm",
		"jdbc:postgresql://a:5432,b:5433/efm?sslmode=require":          "postgres://u:p%40ss@a:5432,b:5433/efm?sslmode=require",
		"jdbc:postgresql://db/efm?ssl=true&ApplicationName=ip":         "postgres://u:p%40ss@db/efm?application_name=ip&sslmode=verify-full",
		"jdbc:postgresql://db/efm?currentSchema=efm&connectTimeout=10": "postgres://u:p%40ss@db/efm?connect_timeout=10&search_path=efm",
	} {
		got, err := PostgresURL(jdbc, "u", "p@ss")
		require.NoError(t, err, jdbc)
		assert.Equal(t, want, got, jdbc)
	}
	got, err := PostgresURL("jdbc:postgresql://db/efm?user=x&password=y", "", "")
	require.NoError(t, err)
	assert.Equal(t, "postgres://x:y@db/efm", got, "credentials in the URL count when the keys are unset")

	for jdbc, want := range map[string]string{
		"jdbc:h2:file:./integrasjonspunkt":           "jdbc:h2 is not supported: jdbc:postgresql://host[:port]/database",
		"jdbc:mysql://db:3306/efm":                   "jdbc:mysql is not supported",
		"jdbc:sqlserver://db:1433;databaseName=efm":  "jdbc:sqlserver is not supported",
		"jdbc:mariadb://db/efm":                      "jdbc:mariadb is not supported",
		"postgres://db/efm":                          "jdbc:postgresql://",
		"jdbc:postgresql://db/":                      "jdbc:postgresql://",
		"jdbc:postgresql://u:p@db/efm":               "jdbc:postgresql://",
		"jdbc:postgresql://db/efm?loggerLevel=DEBUG": "loggerLevel is not supported",
	} {
		_, err := PostgresURL(jdbc, "u", "p")
		if assert.Error(t, err, jdbc) {
			assert.Contains(t, err.Error(), want, jdbc)
		}
	}
}

func TestLoad_DatasourceAndQueueKeys(t *testing.T) {
	c, _, err := Load(Source{Overrides: map[string]string{
		"difi.move.org.number": "910077473", "difi.move.org.keystore.path": "k.p12",
		"difi.move.org.keystore.alias": "a", "difi.move.org.keystore.password": "pw",
		"spring.datasource.url": "jdbc:postgresql://db:5432/efm", "spring.datasource.username": "efm",
		"spring.datasource.password": "secret", "efm.queue.url": "nats://n1:4222, nats://n2:4222",
	}})
	require.NoError(t, err)
	pg, err := c.Postgres()
	require.NoError(t, err)
	assert.Equal(t, "postgres://efm:secret@db:5432/efm", pg)
	assert.Equal(t, []string{"nats://n1:4222", "nats://n2:4222"}, c.QueueURLs())

	_, _, err = Load(Source{Overrides: map[string]string{
		"difi.move.org.number": "910077473", "difi.move.org.keystore.path": "k.p12",
		"difi.move.org.keystore.alias": "a", "difi.move.org.keystore.password": "pw",
		"spring.datasource.url": "jdbc:mysql://db:3306/efm", "efm.queue.url": "http://n1",
	}})
	ps := problems(t, err)
	assert.Contains(t, ps["spring.datasource.url"].Expected, "jdbc:mysql is not supported")
	assert.Contains(t, ps["efm.queue.url"].Expected, "nats://")
}

func FuzzPostgresURL(f *testing.F) {
	for _, s := range []string{"jdbc:postgresql://db:5432/efm", "jdbc:postgresql://a,b/efm?ssl=true", "jdbc:h2:mem", "jdbc:postgresql://%/x?%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, jdbc string) {
		u, err := PostgresURL(jdbc, "user", "secret")
		if err != nil {
			return
		}
		if !strings.HasPrefix(u, "postgres://user:secret@") {
			t.Fatalf("%q -> %q", jdbc, u)
		}
	})
}
