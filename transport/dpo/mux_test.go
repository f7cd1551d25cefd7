package dpo_test

import (
	"net/http"
	"strings"

	"github.com/efm-go/efm/transport/altinn/altinnsim"
	"github.com/efm-go/efm/transport/dpo/dposim"
)

// httptestMux puts the token exchange and the broker on one server, as the
// sandbox mounts Altinn's platform under one host.
func httptestMux(auth *altinnsim.Sim, broker *dposim.Sim) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/authentication/") {
			auth.ServeHTTP(w, r)
			return
		}
		broker.ServeHTTP(w, r)
	})
}
