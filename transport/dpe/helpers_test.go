package dpe_test

import (
	"net/http"
	"time"
)

func httptestClient(timeout time.Duration) *http.Client { return &http.Client{Timeout: timeout} }
