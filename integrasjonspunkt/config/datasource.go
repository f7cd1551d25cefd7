package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// The store's database: SQLite under the data dir unless
// spring.datasource.url names a PostgreSQL server, with the Java integration
// point's own keys so an agency's existing configuration carries over.

// errDatasource is what a JDBC URL must look like.
var errDatasource = errors.New("jdbc:postgresql://host[:port]/database (PostgreSQL is the one external database supported; leave the key unset for the built-in SQLite store)")

// jdbcParams maps the PgJDBC connection parameters we honour to pgx's.
var jdbcParams = map[string]string{
	"sslmode": "sslmode", "sslrootcert": "sslrootcert", "sslcert": "sslcert", "sslkey": "sslkey",
	"connecttimeout": "connect_timeout", "applicationname": "application_name", "currentschema": "search_path",
}

func checkDatasourceURL(v string) error {
	_, err := PostgresURL(v, "", "")
	return err
}

// PostgresURL turns a PgJDBC URL (jdbc:postgresql://host1[:port][,host2...]/db?params)
// and the credentials of spring.datasource.username/password into the
// postgres:// URL pgx takes. Any other JDBC URL is refused, naming what is
// supported.
func PostgresURL(jdbc, user, password string) (string, error) {
	rest, ok := strings.CutPrefix(jdbc, "jdbc:")
	if !ok {
		return "", errDatasource
	}
	sub, _, _ := strings.Cut(rest, ":")
	if sub != "postgresql" {
		return "", fmt.Errorf("%s is not supported: %w", "jdbc:"+sub, errDatasource)
	}
	hostsAndPath, ok := strings.CutPrefix(rest, "postgresql://")
	if !ok {
		return "", errDatasource
	}
	hosts, pathQuery, _ := strings.Cut(hostsAndPath, "/")
	db, query, _ := strings.Cut(pathQuery, "?")
	if hosts == "" || db == "" || strings.ContainsAny(hosts, "@/?#") || strings.ContainsAny(db, "/#") {
		return "", errDatasource
	}
	in, err := url.ParseQuery(query)
	if err != nil {
		return "", fmt.Errorf("%w: %v", errDatasource, err)
	}
	out := url.Values{}
	for k, vs := range in {
		switch name, known := jdbcParams[strings.ToLower(k)]; {
		case strings.EqualFold(k, "user"):
			if user == "" {
				user = vs[0]
			}
		case strings.EqualFold(k, "password"):
			if password == "" {
				password = vs[0]
			}
		case strings.EqualFold(k, "ssl"):
			// PgJDBC's ssl=true verifies the server fully.
			if strings.EqualFold(vs[0], "true") && !in.Has("sslmode") {
				out.Set("sslmode", "verify-full")
			}
		case known:
			out.Set(name, vs[0])
		default:
			return "", fmt.Errorf("connection parameter %s is not supported (supported: ssl, sslmode, sslrootcert, sslcert, sslkey, connectTimeout, applicationName, currentSchema)", k)
		}
	}
	u := url.URL{Scheme: "postgres", Host: hosts, Path: "/" + db, RawQuery: out.Encode()}
	if user != "" {
		u.User = url.UserPassword(user, password)
		if password == "" {
			u.User = url.User(user)
		}
	}
	return u.String(), nil
}

// Postgres returns the store's PostgreSQL URL, or "" for SQLite.
func (c *Config) Postgres() (string, error) {
	jdbc := c.Value("spring.datasource.url")
	if jdbc == "" {
		return "", nil
	}
	return PostgresURL(jdbc, c.Value("spring.datasource.username"), c.Value("spring.datasource.password"))
}

// QueueURLs returns the external NATS servers of efm.queue.url, or nil for
// the embedded server.
func (c *Config) QueueURLs() []string {
	var out []string
	for _, u := range strings.Split(c.Value("efm.queue.url"), ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

func checkQueueURLs(v string) error {
	for _, s := range strings.Split(v, ",") {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" || u.User != nil {
			return errors.New("comma-separated nats://host:port or tls://host:port URLs, without credentials (those go in efm.queue.credentials or efm.queue.nkey)")
		}
	}
	return nil
}
