// Package pionlog routes pion's logging.LoggerFactory into a *slog.Logger, so the
// library never prints on its own.
package pionlog

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/pion/logging"
)

// Discard is a logger that drops everything.
var Discard = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError + 100}))

// OrDiscard returns l, or Discard when l is nil.
func OrDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return Discard
	}
	return l
}

// Factory adapts l to pion's LoggerFactory. pion's Error level is mapped to
// slog's Warn: pion reports expected conditions (a peer closing, a stray packet)
// as errors, and the library reports real failures through its own API.
func Factory(l *slog.Logger) logging.LoggerFactory { return factory{OrDiscard(l)} }

type factory struct{ l *slog.Logger }

func (f factory) NewLogger(scope string) logging.LeveledLogger {
	return logger{f.l.With("pion", scope)}
}

type logger struct{ l *slog.Logger }

func (g logger) log(level slog.Level, msg string) {
	if g.l.Enabled(context.Background(), level) {
		g.l.Log(context.Background(), level, msg)
	}
}

func (g logger) logf(level slog.Level, format string, args ...any) {
	if g.l.Enabled(context.Background(), level) {
		g.l.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (g logger) Trace(msg string)          { g.log(slog.LevelDebug-4, msg) }
func (g logger) Tracef(f string, a ...any) { g.logf(slog.LevelDebug-4, f, a...) }
func (g logger) Debug(msg string)          { g.log(slog.LevelDebug, msg) }
func (g logger) Debugf(f string, a ...any) { g.logf(slog.LevelDebug, f, a...) }
func (g logger) Info(msg string)           { g.log(slog.LevelInfo, msg) }
func (g logger) Infof(f string, a ...any)  { g.logf(slog.LevelInfo, f, a...) }
func (g logger) Warn(msg string)           { g.log(slog.LevelWarn, msg) }
func (g logger) Warnf(f string, a ...any)  { g.logf(slog.LevelWarn, f, a...) }
func (g logger) Error(msg string)          { g.log(slog.LevelWarn, msg) }
func (g logger) Errorf(f string, a ...any) { g.logf(slog.LevelWarn, f, a...) }
