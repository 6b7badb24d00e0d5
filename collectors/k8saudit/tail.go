package k8saudit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/msgid"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/collectors/entitykey"
	"github.com/crowsnest-siem/crowsnest/collectors/internal/filetail"
	"github.com/crowsnest-siem/crowsnest/collectors/publish"
)

// Publisher is what the tail needs of the publisher.
type Publisher = filetail.Publisher

var _ Publisher = (*publish.Publisher)(nil)

// Settings is what the code gives a Tailer.
type Settings struct {
	// Publisher takes the events. Required.
	Publisher Publisher
	// Logger; nil discards.
	Logger *slog.Logger
}

// Tailer follows audit log files: collectors/internal/filetail with a
// handler that publishes each line as an audit event.
type Tailer struct {
	t *filetail.Tailer
}

// New validates cfg and returns a Tailer. Files are opened by Run.
func New(cfg Config, s Settings) (*Tailer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("k8s audit file config: %w", err)
	}
	if s.Publisher == nil {
		return nil, errors.New("k8s audit file: Settings.Publisher is nil")
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fc := filetail.Config{
		Paths:              cfg.Paths,
		DataDir:            cfg.DataDir,
		StartAt:            filetail.StartAt(cfg.StartAt),
		PollInterval:       cfg.PollInterval,
		RotateWait:         cfg.RotateWait,
		MaxLineBytes:       cfg.MaxLineBytes,
		CheckpointInterval: cfg.CheckpointInterval,
	}
	t, err := filetail.New(fc, filetail.Settings{Publisher: s.Publisher, Handler: handler{log: log},
		Source: topology.SourceK8sAudit, Name: ConfigKey, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("k8s audit file: %w", err)
	}
	return &Tailer{t: t}, nil
}

// Run follows the files until ctx ends, then writes the checkpoint, closes
// the files and returns ctx's error. Run may be called again (on this or a
// new Tailer over the same data dir) to go on where it stopped.
func (t *Tailer) Run(ctx context.Context) error { return t.t.Run(ctx) }

type handler struct{ log *slog.Logger }

// Handle publishes every line of chunk as an audit event, or dead-letters
// it with the reason it is not one.
func (h handler) Handle(ctx context.Context, b *publish.Batch, path string, chunk []byte, _ bool) (int, error) {
	now := time.Now()
	for line := range bytes.Lines(chunk) {
		line = bytes.TrimRight(line, "\r\n")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		id, reject := parseLine(line)
		if reject != "" {
			rec := publish.Record{Source: topology.SourceK8sAudit, Data: line, ID: msgid.FromContent(topology.SourceK8sAudit, line), Observed: now}
			h.log.Warn("audit log line rejected", "path", path, "event_id", rec.ID, "reason", reject)
			if err := b.AddDeadLetter(ctx, rec, path+": "+reject); err != nil {
				return 0, fmt.Errorf("dead-letter a line of %s: %w", path, err)
			}
			continue
		}
		if err := b.Add(ctx, publish.Record{Source: topology.SourceK8sAudit, Data: line, ID: id, Observed: now, Key: entitykey.K8sAudit(line)}); err != nil {
			return 0, err
		}
	}
	return len(chunk), nil
}
