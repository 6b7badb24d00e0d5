package embedded

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
)

// slogAdapter routes nats-server's printf-style logging into slog.
//
// Levels: the server's notices (a dozen banner lines at start, each client
// route change) go to debug, so `crowsnest run` stays quiet at info; Start
// logs one info line of its own. Warnings and errors keep their level.
// Fatal goes to error and is remembered rather than exiting the process,
// which is what the server's own logger would do.
type slogAdapter struct {
	log *slog.Logger

	mu    sync.Mutex
	fatal string
}

var _ server.Logger = (*slogAdapter)(nil)

func (a *slogAdapter) Noticef(format string, v ...any) { a.emit(slog.LevelDebug, format, v) }
func (a *slogAdapter) Warnf(format string, v ...any)   { a.emit(slog.LevelWarn, format, v) }
func (a *slogAdapter) Errorf(format string, v ...any)  { a.emit(slog.LevelError, format, v) }
func (a *slogAdapter) Debugf(format string, v ...any)  { a.emit(slog.LevelDebug, format, v) }

// Tracef is dropped: the server traces every protocol line, and it is only
// enabled (SetLoggerV2 trace flag) by a developer debugging the server itself.
func (a *slogAdapter) Tracef(string, ...any) {}

func (a *slogAdapter) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	a.mu.Lock()
	if a.fatal == "" {
		a.fatal = msg
	}
	a.mu.Unlock()
	a.log.Error(msg, "fatal", true)
}

func (a *slogAdapter) emit(level slog.Level, format string, v []any) {
	if !a.log.Enabled(context.Background(), level) {
		return // skip the Sprintf
	}
	a.log.Log(context.Background(), level, fmt.Sprintf(format, v...))
}

// fatalMsg returns the first fatal message the server logged, or "".
func (a *slogAdapter) fatalMsg() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.fatal
}
