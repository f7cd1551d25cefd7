package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/addressing/krr"
	"github.com/efm-go/efm/addressing/sr"
	"github.com/efm-go/efm/integrasjonspunkt/config"
	"github.com/efm-go/efm/packaging/maskinporten"
	"github.com/efm-go/efm/transport"
	"github.com/efm-go/efm/transport/dpo"
	"github.com/efm-go/efm/transport/dpv"
)

// commonChecks reach what every channel needs. The Service Registry is asked
// for our own organisation: that proves the token, the signature check of
// its answers and that the registry knows us.
func commonChecks(cfg *config.Config, mp *maskinporten.Client, scopes []string, src *sr.Client, k *krr.Client) []Probe {
	ps := []Probe{
		{Part: "maskinporten", Run: func(ctx context.Context) error {
			_, err := mp.AccessToken(ctx, scopes...)
			return err
		}},
		{Part: "service registry", Run: func(ctx context.Context) error {
			id, err := ident.ParseID(cfg.OrgNumber)
			if err != nil {
				return err
			}
			_, err = src.Identifier(ctx, id, sr.Query{})
			return err
		}},
	}
	if k != nil {
		ps = append(ps, Probe{Part: "krr", Run: func(ctx context.Context) error {
			_, err := k.PrintCertificate(ctx)
			return err
		}})
	}
	return ps
}

// checks of DPO: the own system user's Altinn token, then the broker's list
// of waiting transfers (a read; nothing is downloaded or confirmed).
func (d DPO) checks() []Probe {
	return []Probe{
		{Part: "altinn token exchange (DPO)", Run: func(ctx context.Context) error {
			_, err := d.exchange.Token(ctx, dpo.ScopeRead)
			return err
		}},
		{Part: "altinn broker (DPO)", Run: func(ctx context.Context) error {
			_, err := d.Client.Pending(ctx)
			return err
		}},
	}
}

// checks of DPV: the Altinn token, then an overview of a correspondence that
// does not exist: Altinn answers 404 only to a caller it let in.
func (d DPV) checks() []Probe {
	return []Probe{
		{Part: "altinn token exchange (DPV)", Run: func(ctx context.Context) error {
			_, err := d.exchange.Token(ctx, dpv.Scope)
			return err
		}},
		{Part: "altinn correspondence (DPV)", Run: func(ctx context.Context) error {
			_, err := d.Client.Poll(ctx, uuid.NewString())
			return err
		}},
	}
}

// checks of DPE: the Service Bus key from the Service Registry. The queue
// itself is not touched: a receive would lock a real incoming message.
func (d DPE) checks() []Probe {
	return []Probe{{Part: "service bus key (DPE)", Run: func(ctx context.Context) error {
		_, key, err := d.keys.SASKey(ctx)
		if err == nil && key == "" {
			err = fmt.Errorf("the service registry gave an empty key")
		}
		return err
	}}}
}

// dpfChecks: SvarUt's shipment types with our sending account (a read), and,
// with SvarInn on, each receiving system's list of new shipments (nothing is
// downloaded or acknowledged).
func dpfChecks(reg Registration, org string) []Probe {
	var ps []Probe
	if out, ok := reg.Channel.(DPF); ok {
		ps = append(ps, Probe{Part: "svarut (DPF)", Run: func(ctx context.Context) error {
			_, err := out.Out.ForsendelseTyper(ctx, org)
			return err
		}})
	}
	if in, ok := reg.Inbox.(DPFInbox); ok {
		for _, c := range in.In {
			ps = append(ps, Probe{Part: "svarinn (DPF)", Run: func(ctx context.Context) error {
				_, err := c.New(ctx)
				return err
			}})
		}
	}
	return ps
}

// checks of DPI: the Maskinporten token with the DPI scope, then the access
// point's statuses of a message it cannot know: it answers 404 only to a
// caller it let in.
func (d DPI) checks() []Probe {
	return []Probe{
		{Part: "maskinporten token (DPI)", Run: func(ctx context.Context) error {
			_, err := d.Client.Token(ctx, "")
			return err
		}},
		{Part: "dpi access point (DPI)", Run: func(ctx context.Context) error {
			_, err := d.Client.Statuses(ctx, uuid.NewString())
			if errors.Is(err, transport.ErrNotFound) {
				return nil
			}
			return err
		}},
	}
}
