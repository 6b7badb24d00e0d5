package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/bus/msgid"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/collectors/entitykey"
	"github.com/crowsnest-siem/crowsnest/collectors/internal/atomicfile"
	"github.com/crowsnest-siem/crowsnest/collectors/publish"
)

// Publisher is what the source needs of the publisher.
type Publisher interface {
	NewBatch() *publish.Batch
}

var _ Publisher = (*publish.Publisher)(nil)

// Settings is what the code gives a Source.
type Settings struct {
	// Publisher takes the events. Required.
	Publisher Publisher
	// Logger; nil discards.
	Logger *slog.Logger
}

// Source follows the engine's events.
type Source struct {
	cfg    Config
	pub    Publisher
	log    *slog.Logger
	client *http.Client
	// since is the time of the last acknowledged event, in nanoseconds.
	since     int64
	savedAt   time.Time
	savedNano int64
}

const checkpointFile = "checkpoint.json"

type checkpoint struct {
	SinceNano int64 `json:"since_nano"`
}

// New validates cfg and returns a Source. Run connects.
func New(cfg Config, s Settings) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("docker config: %w", err)
	}
	if s.Publisher == nil {
		return nil, errors.New("docker: Settings.Publisher is nil")
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sock := cfg.Socket
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		DisableCompression: true,
	}
	return &Source{cfg: cfg, pub: s.Publisher, log: log.With("component", ConfigKey, "source", topology.SourceDocker),
		client: &http.Client{Transport: tr}}, nil
}

// Run follows the events until ctx ends, reconnecting with since after any
// failure, and returns ctx's error.
func (s *Source) Run(ctx context.Context) (err error) {
	defer s.client.CloseIdleConnections()
	if err := s.load(); err != nil {
		return err
	}
	defer func() {
		if serr := s.save(true); serr != nil {
			err = errors.Join(err, serr)
		}
	}()
	backoff := s.cfg.RetryInitial
	for {
		got, err := s.stream(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, publish.ErrClosed) {
			return err
		}
		if got > 0 {
			backoff = s.cfg.RetryInitial
		}
		if serr := s.save(true); serr != nil {
			s.log.Error("checkpoint", "error", serr)
		}
		s.log.Warn("docker event stream ended; reconnecting", "error", err, "since", sinceParam(s.since), "retry_in", backoff)
		t := time.NewTimer(backoff/2 + rand.N(backoff/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(backoff*2, s.cfg.RetryMax)
	}
}

func (s *Source) load() error {
	b, err := os.ReadFile(filepath.Join(s.cfg.DataDir, checkpointFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.since = time.Now().Add(-s.cfg.Lookback).UnixNano()
		return nil
	case err != nil:
		return fmt.Errorf("docker: read checkpoint: %w", err)
	}
	var cp checkpoint
	if err := json.Unmarshal(b, &cp); err != nil {
		return fmt.Errorf("docker: checkpoint %s unreadable (delete it to start from now): %w", filepath.Join(s.cfg.DataDir, checkpointFile), err)
	}
	s.since, s.savedNano = cp.SinceNano, cp.SinceNano
	return nil
}

func (s *Source) save(force bool) error {
	if s.since == s.savedNano || (!force && time.Since(s.savedAt) < s.cfg.CheckpointInterval) {
		return nil
	}
	b, _ := json.Marshal(checkpoint{SinceNano: s.since}) // an int64 field: cannot fail
	if err := atomicfile.WriteFile(s.cfg.DataDir, checkpointFile, append(b, '\n')); err != nil {
		return fmt.Errorf("docker: write checkpoint: %w", err)
	}
	s.savedNano, s.savedAt = s.since, time.Now()
	return nil
}

// sinceParam formats nanoseconds as the engine's "seconds.nanoseconds".
func sinceParam(nanos int64) string {
	return strconv.FormatInt(nanos/1e9, 10) + "." + fmt.Sprintf("%09d", nanos%1e9)
}

// stream reads one connection's events and returns how many it published.
func (s *Source) stream(ctx context.Context) (int, error) {
	q := url.Values{"since": {sinceParam(s.since)}}
	if len(s.cfg.Types) > 0 {
		f, _ := json.Marshal(map[string][]string{"type": s.cfg.Types}) // strings only: cannot fail
		q.Set("filters", string(f))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/events?"+q.Encode(), nil)
	if err != nil {
		return 0, fmt.Errorf("docker: request: %w", err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("docker: GET /events on %s: %w", s.cfg.Socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("docker: GET /events: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	s.log.Info("following docker events", "socket", s.cfg.Socket, "since", sinceParam(s.since))
	dec := json.NewDecoder(io.LimitReader(resp.Body, 1<<62))
	n := 0
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return n, io.ErrUnexpectedEOF // the engine never ends the stream on its own
			}
			if _, ok := errors.AsType[*json.SyntaxError](err); ok {
				// The stream is out of step: take what is left of the line
				// as a dead letter and reconnect from the last event.
				rest, _ := io.ReadAll(io.LimitReader(dec.Buffered(), int64(s.cfg.MaxEventBytes)))
				if derr := s.publish(ctx, rest, "not a JSON event: "+err.Error()); derr != nil {
					return n, derr
				}
			}
			return n, fmt.Errorf("docker: read events: %w", err)
		}
		reject := ""
		switch {
		case len(raw) > int(s.cfg.MaxEventBytes):
			reject = fmt.Sprintf("event larger than max_event_bytes (%d)", s.cfg.MaxEventBytes)
		case raw[0] != '{':
			reject = "event is not a JSON object"
		}
		if err := s.publish(ctx, raw, reject); err != nil {
			return n, err
		}
		n++
		if t := eventNanos(raw); t > s.since {
			s.since = t
		}
		if err := s.save(false); err != nil {
			s.log.Error("checkpoint", "error", err)
		}
	}
}

// publish publishes (or dead-letters) one event and waits for its
// acknowledgement before the position moves past it.
func (s *Source) publish(ctx context.Context, raw []byte, reject string) error {
	if len(raw) == 0 {
		return nil
	}
	rec := publish.Record{Source: topology.SourceDocker, Data: raw, ID: msgid.FromContent(topology.SourceDocker, raw), Observed: time.Now(), Key: entitykey.Docker(raw)}
	b := s.pub.NewBatch()
	var err error
	if reject != "" {
		s.log.Warn("docker event rejected", "event_id", rec.ID, "reason", reject)
		err = b.AddDeadLetter(ctx, rec, "docker events: "+reject)
	} else {
		err = b.Add(ctx, rec)
	}
	if err != nil {
		b.Seal()
		return fmt.Errorf("docker: publish: %w", err)
	}
	if err := b.Wait(ctx); err != nil {
		return fmt.Errorf("docker: publish: %w", err)
	}
	return nil
}

// eventNanos is an event's time in nanoseconds: timeNano, unless it
// disagrees with time by more than a second (some recorded streams carry
// a bogus timeNano), then time.
func eventNanos(raw []byte) int64 {
	r := gjson.GetManyBytes(raw, "time", "timeNano")
	sec, nano := r[0].Int(), r[1].Int()
	switch {
	case nano > 0 && (sec == 0 || (nano/1e9 >= sec-1 && nano/1e9 <= sec+1)):
		return nano
	case sec > 0:
		return sec * 1e9
	}
	return 0
}
