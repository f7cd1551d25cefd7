// Package logattr holds the slog attribute constructors, one key per concept,
// so that every log line names the same thing the same way (operations.md §2.2).
//
// There is deliberately no constructor for a receiver or any other identifier
// that may be a national identity number: logs correlate by message and
// conversation id only.
package logattr

import (
	"log/slog"
	"time"
)

// Component names the part of the daemon writing the line, e.g. "store".
func Component(name string) slog.Attr { return slog.String("component", name) }

// MessageID is the SBD instanceIdentifier.
func MessageID(id string) slog.Attr { return slog.String("message_id", id) }

// ConversationID is the SBD conversation identifier.
func ConversationID(id string) slog.Attr { return slog.String("conversation_id", id) }

// Service is the channel: DPO, DPV, DPI, DPF, DPFIO, DPE or DPH.
func Service(s string) slog.Attr { return slog.String("service", s) }

// Status is a message status value as the contract spells it.
func Status(s string) slog.Attr { return slog.String("status", s) }

// Err is an error. Errors never carry personal identifiers (STYLE.md §5).
func Err(err error) slog.Attr { return slog.Any("error", err) }

// Duration is an elapsed time, written in seconds for machines.
func Duration(key string, d time.Duration) slog.Attr { return slog.Float64(key, d.Seconds()) }

// Route is the HTTP route pattern, never the raw URL: query strings carry identifiers.
func Route(pattern string) slog.Attr { return slog.String("route", pattern) }

// Client is the product token of the caller's User-Agent.
func Client(product string) slog.Attr { return slog.String("client", product) }

// Key is a configuration key.
func Key(k string) slog.Attr { return slog.String("key", k) }
