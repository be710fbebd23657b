package recipetest

import (
	"context"
	"log/slog"
	"slices"
	"sync"
)

// Records is a slog handler that keeps every record's message, for tests
// that count log records.
type Records struct {
	mu   sync.Mutex
	msgs []string
}

// Logger returns a logger writing to r.
func (r *Records) Logger() *slog.Logger { return slog.New(r) }

func (r *Records) Enabled(context.Context, slog.Level) bool { return true }

func (r *Records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Message)
	return nil
}

func (r *Records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *Records) WithGroup(string) slog.Handler      { return r }

// Count is how many records had the message msg.
func (r *Records) Count(msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

// All is every message, in order.
func (r *Records) All() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}
