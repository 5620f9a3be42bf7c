package testserver

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// levelTrace is the slog level pion's Trace messages are logged at.
const levelTrace = slog.LevelDebug - 4

// loggerFactory routes pion's loggers into a *slog.Logger, one "scope"
// attribute per pion logger.
type loggerFactory struct{ l *slog.Logger }

func newLoggerFactory(l *slog.Logger) loggerFactory {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return loggerFactory{l: l}
}

// NewLogger implements logging.LoggerFactory.
func (f loggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return leveledLogger{l: f.l.With("scope", scope)}
}

type leveledLogger struct{ l *slog.Logger }

func (l leveledLogger) log(level slog.Level, msg string) {
	l.l.Log(context.Background(), level, msg)
}

func (l leveledLogger) logf(level slog.Level, format string, args ...any) {
	if !l.l.Enabled(context.Background(), level) {
		return
	}
	l.l.Log(context.Background(), level, fmt.Sprintf(format, args...))
}

func (l leveledLogger) Trace(msg string)                  { l.log(levelTrace, msg) }
func (l leveledLogger) Tracef(format string, args ...any) { l.logf(levelTrace, format, args...) }
func (l leveledLogger) Debug(msg string)                  { l.log(slog.LevelDebug, msg) }
func (l leveledLogger) Debugf(format string, args ...any) { l.logf(slog.LevelDebug, format, args...) }
func (l leveledLogger) Info(msg string)                   { l.log(slog.LevelInfo, msg) }
func (l leveledLogger) Infof(format string, args ...any)  { l.logf(slog.LevelInfo, format, args...) }
func (l leveledLogger) Warn(msg string)                   { l.log(slog.LevelWarn, msg) }
func (l leveledLogger) Warnf(format string, args ...any)  { l.logf(slog.LevelWarn, format, args...) }
func (l leveledLogger) Error(msg string)                  { l.log(slog.LevelError, msg) }
func (l leveledLogger) Errorf(format string, args ...any) { l.logf(slog.LevelError, format, args...) }
