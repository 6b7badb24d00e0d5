package jsonlines

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/bus/msgid"
	"github.com/crowsnest-siem/crowsnest/collectors/entitykey"
	"github.com/crowsnest-siem/crowsnest/collectors/internal/filetail"
	"github.com/crowsnest-siem/crowsnest/collectors/internal/ingress"
	"github.com/crowsnest-siem/crowsnest/collectors/publish"
)

// Publisher is what the source needs of the publisher.
type Publisher interface {
	NewBatch() *publish.Batch
}

// Settings is what the code gives a Source.
type Settings struct {
	// Publisher takes the records. Required.
	Publisher Publisher
	// Stdin is read when stdin: true; nil: nothing.
	Stdin io.Reader
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer takes the HTTP metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Ready, when set, says whether records can be taken now; when it
	// errs, requests are answered 503 at once (collectors/internal/ingress).
	Ready func() error
}

// Source runs the configured inputs.
type Source struct {
	cfg   Config
	pub   Publisher
	log   *slog.Logger
	stdin io.Reader
	tail  *filetail.Tailer
	srv   *ingress.Server
}

// New validates cfg, and binds the HTTP address when enabled.
func New(cfg Config, s Settings) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("json lines config: %w", err)
	}
	if s.Publisher == nil {
		return nil, errors.New("json lines: Settings.Publisher is nil")
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	src := &Source{cfg: cfg, pub: s.Publisher, log: log.With("component", ConfigKey, "source", cfg.Source), stdin: s.Stdin}
	if len(cfg.Files.Paths) > 0 {
		t, err := filetail.New(cfg.Files, filetail.Settings{Publisher: s.Publisher, Handler: fileHandler{src},
			Source: cfg.Source, Name: ConfigKey, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("json lines: %w", err)
		}
		src.tail = t
	}
	if cfg.HTTP.Enabled {
		mux := http.NewServeMux()
		mux.Handle("POST "+cfg.HTTP.Path, http.HandlerFunc(src.serve))
		srv, err := ingress.New(cfg.HTTP.Server, ingress.Settings{Source: ConfigKey, Logger: log, Registerer: s.Registerer, Ready: s.Ready}, mux)
		if err != nil {
			return nil, fmt.Errorf("json lines: %w", err)
		}
		src.srv = srv
	}
	return src, nil
}

// URL is the HTTP endpoint ("" when off).
func (s *Source) URL() string {
	if s.srv == nil {
		return ""
	}
	return s.srv.URL() + s.cfg.HTTP.Path
}

// Close releases the listener of a Source that was never Run.
func (s *Source) Close() error {
	if s.srv != nil {
		return s.srv.Close()
	}
	return nil
}

// Run runs every input until ctx ends (stdin alone: until it ends too).
func (s *Source) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, 3)
	run := func(i int, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errs[i] = err
			}
		}()
	}
	if s.tail != nil {
		run(0, s.tail.Run)
	}
	if s.srv != nil {
		run(1, s.srv.Run)
	}
	if s.cfg.Stdin && s.stdin != nil {
		run(2, s.readStdin)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return ctx.Err()
}

// record checks one line and derives its id.
func (s *Source) record(line []byte, now time.Time) (publish.Record, string) {
	rec := publish.Record{Source: s.cfg.Source, Data: line, Observed: now, Key: entitykey.Of(s.cfg.Source, line)}
	if !gjson.ValidBytes(line) {
		rec.ID = msgid.FromContent(s.cfg.Source, line)
		return rec, "not valid JSON"
	}
	if line[0] != '{' {
		rec.ID = msgid.FromContent(s.cfg.Source, line)
		return rec, "not a JSON object"
	}
	if s.cfg.IDField != "" {
		if v := gjson.GetBytes(line, s.cfg.IDField); v.Exists() && (v.Type == gjson.String || v.Type == gjson.Number) && v.String() != "" {
			rec.ID = msgid.Derived(s.cfg.Source, v.String())
			return rec, ""
		}
	}
	rec.ID = msgid.FromContent(s.cfg.Source, line)
	return rec, ""
}

// addLines adds every non-blank line of chunk to b.
func (s *Source) addLines(ctx context.Context, b *publish.Batch, where string, chunk []byte) (n, rejected int, err error) {
	now := time.Now()
	for line := range bytes.Lines(chunk) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		n++
		rec, reject := s.record(line, now)
		if reject != "" {
			rejected++
			s.log.Warn("line rejected", "where", where, "event_id", rec.ID, "reason", reject)
			err = b.AddDeadLetter(ctx, rec, where+": "+reject)
		} else {
			err = b.Add(ctx, rec)
		}
		if err != nil {
			return n, rejected, err
		}
	}
	return n, rejected, nil
}

type fileHandler struct{ s *Source }

func (h fileHandler) Handle(ctx context.Context, b *publish.Batch, path string, chunk []byte, _ bool) (int, error) {
	if _, _, err := h.s.addLines(ctx, b, path, chunk); err != nil {
		return 0, err
	}
	return len(chunk), nil
}

// stdinBatch is how many lines of stdin are acknowledged together.
const stdinBatch = 512

func (s *Source) readStdin(ctx context.Context) error {
	r := bufio.NewReaderSize(s.stdin, 64<<10)
	maxLine := int(s.cfg.Files.MaxLineBytes)
	for {
		var chunk []byte
		lines := 0
		var readErr error
		for lines < stdinBatch {
			line, err := r.ReadBytes('\n')
			if len(line) > maxLine {
				line = line[:maxLine] // dead-lettered as invalid JSON: a sample, not dropped
			}
			chunk = append(chunk, line...)
			if len(line) > 0 && line[len(line)-1] != '\n' {
				chunk = append(chunk, '\n')
			}
			lines++
			if err != nil {
				readErr = err
				break
			}
			if r.Buffered() == 0 {
				break // publish what we have rather than wait for more
			}
		}
		b := s.pub.NewBatch()
		if _, _, err := s.addLines(ctx, b, "stdin", chunk); err != nil {
			b.Seal()
			return fmt.Errorf("json lines: publish stdin: %w", err)
		}
		if err := b.Wait(ctx); err != nil {
			return fmt.Errorf("json lines: publish stdin: %w", err)
		}
		if errors.Is(readErr, io.EOF) {
			return nil
		}
		if readErr != nil {
			return fmt.Errorf("json lines: read stdin: %w", readErr)
		}
	}
}

func (s *Source) serve(w http.ResponseWriter, req *http.Request) {
	body, ok := ingress.ReadBody(w, req)
	if !ok {
		return
	}
	ctx := req.Context()
	trimmed := bytes.TrimSpace(body)
	// One JSON array of objects: one record per element.
	if len(trimmed) > 0 && trimmed[0] == '[' && gjson.ValidBytes(trimmed) {
		var lines []byte
		gjson.ParseBytes(trimmed).ForEach(func(_, v gjson.Result) bool {
			lines = append(append(lines, v.Raw...), '\n')
			return true
		})
		trimmed = lines
	} else if len(trimmed) > 0 && trimmed[0] == '{' && gjson.ValidBytes(trimmed) && bytes.IndexByte(trimmed, '\n') >= 0 {
		// One pretty-printed object: compacted onto one line.
		trimmed = []byte(gjson.GetBytes(trimmed, "@ugly").Raw)
	}
	b := s.pub.NewBatch()
	n, rejected, err := s.addLines(ctx, b, "http", trimmed)
	if err != nil {
		b.Seal()
		s.srv.Fail(w, err)
		return
	}
	if err := b.Wait(ctx); err != nil {
		s.srv.Fail(w, err)
		return
	}
	if n > 0 && rejected == n {
		ingress.Reply(w, http.StatusBadRequest, "no JSON object in the body (kept in the dead-letter stream)")
		return
	}
	ingress.Reply(w, http.StatusOK, fmt.Sprintf("%d records stored, %d rejected", n-rejected, rejected))
}
