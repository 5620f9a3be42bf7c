package dtlssrtp

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// LevelTrace is the slog level pion's Trace messages are logged at (below
// slog.LevelDebug).
const LevelTrace = slog.LevelDebug - 4

// slogFactory routes pion's logging into a *slog.Logger. Each pion logger
// adds the attribute scope=<pion scope> (e.g. "dtls").
type slogFactory struct{ l *slog.Logger }

// newLoggerFactory returns a pion LoggerFactory writing to l; nil discards.
func newLoggerFactory(l *slog.Logger) logging.LoggerFactory {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return slogFactory{l: l}
}

func (f slogFactory) NewLogger(scope string) logging.LeveledLogger {
	return &slogLogger{l: f.l.With(slog.String("scope", scope))}
}

type slogLogger struct{ l *slog.Logger }

var _ logging.LeveledLogger = (*slogLogger)(nil)

func (s *slogLogger) log(level slog.Level, msg string) {
	s.l.Log(context.Background(), level, msg)
}

func (s *slogLogger) logf(level slog.Level, format string, args ...any) {
	if !s.l.Enabled(context.Background(), level) {
		return
	}
	s.l.Log(context.Background(), level, fmt.Sprintf(format, args...))
}

func (s *slogLogger) Trace(msg string)                  { s.log(LevelTrace, msg) }
func (s *slogLogger) Tracef(format string, args ...any) { s.logf(LevelTrace, format, args...) }
func (s *slogLogger) Debug(msg string)                  { s.log(slog.LevelDebug, msg) }
func (s *slogLogger) Debugf(format string, args ...any) { s.logf(slog.LevelDebug, format, args...) }
func (s *slogLogger) Info(msg string)                   { s.log(slog.LevelInfo, msg) }
func (s *slogLogger) Infof(format string, args ...any)  { s.logf(slog.LevelInfo, format, args...) }
func (s *slogLogger) Warn(msg string)                   { s.log(slog.LevelWarn, msg) }
func (s *slogLogger) Warnf(format string, args ...any)  { s.logf(slog.LevelWarn, format, args...) }
func (s *slogLogger) Error(msg string)                  { s.log(slog.LevelError, msg) }
func (s *slogLogger) Errorf(format string, args ...any) { s.logf(slog.LevelError, format, args...) }
