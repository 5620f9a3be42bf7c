package sipp2p

import (
	"context"
	"log/slog"
	"sync"

	"github.com/emiago/sipgo/sip"
)

// sipgo logs some lines (connection reference counting, "ref went
// negative") through its package-wide default logger, which is slog.Default
// unless set. This package sets it once, at init, to a handler that hands
// those lines to the loggers of the live endpoints (Config.Logger) and
// discards them when there is none, so the library never prints on its own.
// The lines carry no endpoint, so every live endpoint with a logger gets them.

var sinks struct {
	mu   sync.Mutex
	logs map[*slog.Logger]int
}

func init() { sip.SetDefaultLogger(slog.New(fanout{})) }

// addEndpointLogger registers l to receive sipgo's package-wide lines.
func addEndpointLogger(l *slog.Logger) {
	sinks.mu.Lock()
	defer sinks.mu.Unlock()
	if sinks.logs == nil {
		sinks.logs = make(map[*slog.Logger]int)
	}
	sinks.logs[l]++
}

// removeEndpointLogger undoes addEndpointLogger.
func removeEndpointLogger(l *slog.Logger) {
	sinks.mu.Lock()
	defer sinks.mu.Unlock()
	if sinks.logs[l]--; sinks.logs[l] <= 0 {
		delete(sinks.logs, l)
	}
}

// fanout is the slog.Handler behind sipgo's default logger.
type fanout struct {
	attrs []slog.Attr
	group string
}

func (f fanout) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (f fanout) Handle(ctx context.Context, r slog.Record) error {
	sinks.mu.Lock()
	logs := make([]*slog.Logger, 0, len(sinks.logs))
	for l := range sinks.logs {
		logs = append(logs, l)
	}
	sinks.mu.Unlock()
	r.AddAttrs(slog.String("component", "sipgo"))
	for _, l := range logs {
		h := l.Handler()
		if f.group != "" {
			h = h.WithGroup(f.group)
		}
		if len(f.attrs) > 0 {
			h = h.WithAttrs(f.attrs)
		}
		if h.Enabled(ctx, r.Level) {
			_ = h.Handle(ctx, r.Clone())
		}
	}
	return nil
}

func (f fanout) WithAttrs(as []slog.Attr) slog.Handler {
	return fanout{attrs: append(append([]slog.Attr(nil), f.attrs...), as...), group: f.group}
}

func (f fanout) WithGroup(name string) slog.Handler {
	if f.group != "" {
		name = f.group + "." + name
	}
	return fanout{attrs: f.attrs, group: name}
}

// minLevel passes records at or above level to h.
type minLevel struct {
	slog.Handler
	level slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.level && m.Handler.Enabled(ctx, l)
}

func (m minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{m.Handler.WithAttrs(as), m.level}
}

func (m minLevel) WithGroup(name string) slog.Handler {
	return minLevel{m.Handler.WithGroup(name), m.level}
}

// sipgoLogger is the logger given to sipgo's layers: ours, warnings and
// errors only, tagged with the component.
func sipgoLogger(l *slog.Logger) *slog.Logger {
	return slog.New(minLevel{l.Handler(), slog.LevelWarn}).With("component", "sipgo")
}
