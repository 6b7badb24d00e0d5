package terminal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/crowsnest-siem/crowsnest/schemas"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
)

// maxEventIDs is how many triggering event ids an alert line shows.
const maxEventIDs = 3

// Sink prints alerts and a periodic status line to an io.Writer.
type Sink struct {
	cfg   Config
	out   io.Writer
	color bool
	log   *slog.Logger
	now   func() time.Time

	mu       sync.Mutex // guards out and everything below
	events   uint64
	alerts   uint64
	pending  map[sink.Kind]uint64
	lastN    uint64
	lastTick time.Time
	buf      []byte

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

var (
	_ sink.Sink             = (*Sink)(nil)
	_ sink.ConsumerObserver = (*Sink)(nil)
)

// New returns a terminal sink printing to out and starts its status line.
// Close stops it.
func New(cfg Config, out io.Writer, set sink.Settings) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("terminal sink: %w", err)
	}
	if out == nil {
		return nil, errors.New("terminal sink: nil output")
	}
	s := &Sink{
		cfg:     cfg,
		out:     out,
		color:   cfg.Color == ColorAlways || cfg.Color == ColorAuto && isTerminal(out),
		log:     set.LoggerOrDiscard().With("sink", Type),
		now:     time.Now,
		pending: map[sink.Kind]uint64{},
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	s.lastTick = s.now()
	go s.statusLoop()
	return s, nil
}

// isTerminal reports whether w is a character device, which a terminal is
// and a file or a pipe is not.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// WriteBatch prints each alert (and each event with show_events) and counts
// the rest. An alert that is not JSON fails permanently: there is nothing to
// print.
func (s *Sink) WriteBatch(_ context.Context, batch []sink.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	be := sink.NewBatchError()
	b := s.buf[:0]
	var events, alerts uint64
	for i := range batch {
		r := &batch[i]
		switch r.Kind {
		case sink.KindAlerts:
			var a schemas.Alert
			if err := json.Unmarshal(r.Data, &a); err != nil {
				be.Failed(i, sink.Permanent(fmt.Errorf("alert %s: %w", r.ID, err)))
				continue
			}
			b = s.appendAlert(b, &a, r.ID)
			alerts++
		case sink.KindEvents:
			if s.cfg.ShowEvents {
				var e schemas.Event
				if err := json.Unmarshal(r.Data, &e); err != nil {
					be.Failed(i, sink.Permanent(fmt.Errorf("event %s: %w", r.ID, err)))
					continue
				}
				b = s.appendEvent(b, &e, r.ID)
			}
			events++
		default:
			be.Failed(i, sink.Permanent(fmt.Errorf("record %s: unknown stream kind %d", r.ID, r.Kind)))
		}
	}
	s.buf = b
	if len(b) > 0 {
		if _, err := s.out.Write(b); err != nil {
			return fmt.Errorf("terminal sink: write: %w", err)
		}
	}
	s.events += events
	s.alerts += alerts
	if be.Len() > 0 {
		return be
	}
	return nil
}

// ObserveConsumer keeps the lag shown in the status line.
func (s *Sink) ObserveConsumer(st sink.ConsumerStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending[st.Kind] = st.NumPending
}

// Close stops the status line after printing it one last time. It is safe
// to call twice.
func (s *Sink) Close(context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		err = s.printStatus()
	})
	return err
}

func (s *Sink) statusLoop() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.StatusInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.printStatus(); err != nil {
				s.log.Warn("print status", "err", err)
			}
		}
	}
}

func (s *Sink) printStatus() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	rate := 0.0
	if d := now.Sub(s.lastTick).Seconds(); d > 0 {
		rate = float64(s.events-s.lastN) / d
	}
	s.lastN, s.lastTick = s.events, now
	b := s.buf[:0]
	b = s.paint(b, ansiDim, now.UTC().Format("15:04:05Z"))
	b = append(b, "  events "...)
	b = appendThousands(b, s.events)
	b = append(b, " (+"...)
	b = strconv.AppendFloat(b, rate, 'f', 0, 64)
	b = append(b, "/s)  alerts "...)
	b = appendThousands(b, s.alerts)
	b = append(b, "  lag "...)
	b = appendThousands(b, s.pending[sink.KindEvents]+s.pending[sink.KindAlerts])
	b = append(b, '\n')
	s.buf = b
	if _, err := s.out.Write(b); err != nil {
		return fmt.Errorf("terminal sink: write: %w", err)
	}
	return nil
}

// ANSI styles.
const (
	ansiReset   = "\x1b[0m"
	ansiBold    = "\x1b[1m"
	ansiDim     = "\x1b[2m"
	ansiRed     = "\x1b[31m"
	ansiBoldRed = "\x1b[1;31m"
	ansiYellow  = "\x1b[33m"
	ansiCyan    = "\x1b[36m"
)

func levelStyle(level string) string {
	switch level {
	case "critical":
		return ansiBoldRed
	case "high":
		return ansiRed
	case "medium":
		return ansiYellow
	case "low":
		return ansiCyan
	}
	return ansiDim
}

// paint appends text in style when colouring, plain otherwise.
func (s *Sink) paint(b []byte, style, text string) []byte {
	if !s.color {
		return append(b, text...)
	}
	b = append(b, style...)
	b = append(b, text...)
	return append(b, ansiReset...)
}

func (s *Sink) appendAlert(b []byte, a *schemas.Alert, id string) []byte {
	b = append(b, a.Timestamp.UTC().Format(time.RFC3339)...)
	b = append(b, ' ')
	level := a.Rule.Level
	if level == "" {
		level = "unknown"
	}
	b = s.paint(b, levelStyle(level), pad(strings.ToUpper(clean(level)), 9))
	b = append(b, ' ')
	rule := a.Rule.Name
	if rule == "" {
		rule = a.Rule.ID
	}
	b = s.paint(b, ansiBold, clean(rule))
	if where := workload(a.Orchestrator, a.Container); where != "" {
		b = append(b, "  "...)
		b = append(b, clean(where)...)
	}
	if a.User.Name != "" {
		b = append(b, "  user="...)
		b = append(b, clean(a.User.Name)...)
	}
	if e := a.Crowsnest.Alert.Entity; e != "" {
		b = append(b, "  entity="...)
		b = append(b, clean(e)...)
	}
	if ids := a.Crowsnest.Alert.EventIDs; len(ids) > 0 {
		b = append(b, "  events="...)
		for i, eid := range ids[:min(len(ids), maxEventIDs)] {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, clean(eid)...)
		}
		if len(ids) > maxEventIDs {
			b = append(b, ",+"...)
			b = strconv.AppendInt(b, int64(len(ids)-maxEventIDs), 10)
		}
	}
	return appendID(b, id)
}

func (s *Sink) appendEvent(b []byte, e *schemas.Event, id string) []byte {
	b = append(b, e.Timestamp.UTC().Format(time.RFC3339)...)
	b = append(b, ' ')
	b = s.paint(b, ansiDim, pad("event", 9))
	b = append(b, ' ')
	b = append(b, clean(e.Event.Dataset)...)
	if e.Event.Action != "" {
		b = append(b, ' ')
		b = append(b, clean(e.Event.Action)...)
	}
	if where := workload(e.Orchestrator, e.Container); where != "" {
		b = append(b, "  "...)
		b = append(b, clean(where)...)
	}
	if e.User.Name != "" {
		b = append(b, "  user="...)
		b = append(b, clean(e.User.Name)...)
	}
	return appendID(b, id)
}

func appendID(b []byte, id string) []byte {
	b = append(b, "  id="...)
	b = append(b, clean(id)...)
	return append(b, '\n')
}

// workload names where it happened: namespace/pod, or namespace/resource,
// or the container.
func workload(o schemas.Orchestrator, c schemas.Container) string {
	name := c.Name
	if o.Resource.Name != "" && (o.Resource.Type == "pods" || name == "") {
		name = o.Resource.Name
	}
	switch {
	case o.Namespace != "" && name != "":
		return o.Namespace + "/" + name
	case o.Namespace != "":
		return o.Namespace + "/"
	}
	return name
}

// clean makes an untrusted value safe to print: control and format
// characters (escape sequences, bidirectional overrides) become U+FFFD, as
// do invalid UTF-8 bytes.
func clean(v string) string {
	safe := true
	for _, r := range v {
		if unsafeRune(r) {
			safe = false
			break
		}
	}
	if safe {
		return v
	}
	return strings.Map(func(r rune) rune {
		if unsafeRune(r) {
			return utf8.RuneError
		}
		return r
	}, v)
}

func unsafeRune(r rune) bool {
	return r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}

func pad(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return s + strings.Repeat(" ", n-len(s))
}

// appendThousands appends v with thousands separators: 12,345.
func appendThousands(b []byte, v uint64) []byte {
	s := strconv.FormatUint(v, 10)
	for i, c := range []byte(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			b = append(b, ',')
		}
		b = append(b, c)
	}
	return b
}
