package auditd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/msgid"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/collectors/internal/filetail"
	"github.com/crowsnest-siem/crowsnest/collectors/publish"
)

// Settings is what the code gives a Tailer.
type Settings struct {
	// Publisher takes the events. Required.
	Publisher filetail.Publisher
	// Logger; nil discards.
	Logger *slog.Logger
}

// Tailer follows audit logs.
type Tailer struct {
	t *filetail.Tailer
}

// New validates cfg and returns a Tailer.
func New(cfg Config, s Settings) (*Tailer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("auditd config: %w", err)
	}
	if s.Publisher == nil {
		return nil, errors.New("auditd: Settings.Publisher is nil")
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t, err := filetail.New(cfg.Files, filetail.Settings{Publisher: s.Publisher, Handler: handler{log: log},
		Source: topology.SourceAuditd, Name: ConfigKey, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("auditd: %w", err)
	}
	return &Tailer{t: t}, nil
}

// Run follows the files until ctx ends.
func (t *Tailer) Run(ctx context.Context) error { return t.t.Run(ctx) }

type handler struct{ log *slog.Logger }

func (h handler) Handle(ctx context.Context, b *publish.Batch, path string, chunk []byte, final bool) (int, error) {
	ready, lines, consumed := groupChunk(chunk, final)
	now := time.Now()
	for _, g := range ready {
		data := eventBytes(chunk, lines, g)
		rec := publish.Record{Source: topology.SourceAuditd, Data: data, ID: msgid.FromContent(topology.SourceAuditd, data), Observed: now}
		if g.reject != "" {
			h.log.Warn("audit log line rejected", "path", path, "event_id", rec.ID, "reason", g.reject)
			if err := b.AddDeadLetter(ctx, rec, path+": "+g.reject); err != nil {
				return 0, err
			}
			continue
		}
		if err := b.Add(ctx, rec); err != nil {
			return 0, err
		}
	}
	return consumed, nil
}
