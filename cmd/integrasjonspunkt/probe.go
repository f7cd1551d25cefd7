package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/efm-go/efm/integrasjonspunkt/config"
)

func init() {
	commands = append(commands, command{"probe", "ask the local daemon's /manage/health/{liveness|readiness}; exit 0 when it answers 200 (a container's health check)", probeCmd})
}

// probeCmd is the container image's HEALTHCHECK: the image has no shell and
// no curl, so the binary asks its own loopback port.
func probeCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	loc := devLocations()
	fs := newFlags("probe", stderr)
	loc.flags(fs)
	which := fs.String("probe", "liveness", "`liveness` or readiness")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *which != "liveness" && *which != "readiness" {
		return &exitError{code: exitUsage, err: fmt.Errorf("--probe %q: want liveness or readiness", *which)}
	}
	scheme, port := "http", 9093
	if cfg, _, _ := config.Load(config.Source{File: loc.config, Env: os.Environ()}); cfg != nil {
		if cfg.Server.Port != 0 {
			port = cfg.Server.Port
		}
		if cfg.Server.TLS {
			scheme = "https"
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	url := scheme + "://127.0.0.1:" + strconv.Itoa(port) + "/manage/health/" + *which
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	// Loopback to our own port, nothing secret sent, only the status code
	// read: the certificate names the public host, not 127.0.0.1.
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%s: no answer: %w", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	fmt.Fprintf(stdout, "%s: %s\n", *which, resp.Status)
	return nil
}
