package worker

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/election"
	"github.com/rosterkit/roster/lock"
)

// maxHold bounds POST /critical?hold=: how long one call may keep the lock.
const maxHold = 30 * time.Second

func (w *Worker) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /critical", w.m.measure("critical", http.HandlerFunc(w.critical)))
	if w.cfg.Metrics != nil {
		mux.Handle("GET /metrics", w.cfg.Metrics)
	}
	mux.Handle("/", w.m.measure("hello", http.HandlerFunc(w.hello)))
	return mux
}

func writeJSON(rw http.ResponseWriter, code int, v any) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(code)
	json.NewEncoder(rw).Encode(v)
}

// hello answers every other path with who answered, so a caller going
// through the gateway sees the spread.
func (w *Worker) hello(rw http.ResponseWriter, r *http.Request) {
	body := map[string]any{
		"id":      w.cfg.ID,
		"service": w.cfg.Service,
		"addr":    w.Addr(),
		"leader":  w.Leading(),
		"path":    r.URL.Path,
	}
	if drained, reason := w.Drained(); drained {
		body["draining"] = reason
	}
	writeJSON(rw, http.StatusOK, body)
}

// critical increments a counter in etcd under the service's lock. The read
// and the write are not one transaction on purpose: the lock is what makes
// them safe, and the write is fenced so that a holder that lost the lock
// (paused, cut off) cannot overwrite a newer holder's count. ?hold=2s keeps
// the lock that long, so that concurrent calls queue up visibly.
func (w *Worker) critical(rw http.ResponseWriter, r *http.Request) {
	var hold time.Duration
	if s := r.URL.Query().Get("hold"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 || d > maxHold {
			writeJSON(rw, http.StatusBadRequest, map[string]any{"id": w.cfg.ID, "error": "hold: want a duration from 0 to " + maxHold.String()})
			return
		}
		hold = d
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second+hold)
	defer cancel()
	h, err := w.mu.Lock(ctx)
	if err != nil {
		writeJSON(rw, http.StatusServiceUnavailable, map[string]any{"id": w.cfg.ID, "error": err.Error()})
		return
	}
	defer h.Release(context.WithoutCancel(ctx))
	w.m.criticals.Add(ctx, 1)
	if hold > 0 {
		select {
		case <-time.After(hold):
		case <-h.Done():
		case <-ctx.Done():
		}
	}
	count, err := w.increment(ctx, h)
	switch {
	case errors.Is(err, lock.ErrNotHeld):
		writeJSON(rw, http.StatusConflict, map[string]any{"id": w.cfg.ID, "error": "lock lost; write refused", "token": h.Token()})
	case err != nil:
		writeJSON(rw, http.StatusServiceUnavailable, map[string]any{"id": w.cfg.ID, "error": err.Error()})
	default:
		writeJSON(rw, http.StatusOK, map[string]any{"id": w.cfg.ID, "token": h.Token(), "counter": count})
	}
}

func (w *Worker) increment(ctx context.Context, h *lock.Hold) (int64, error) {
	key := w.cfg.Namespace + "/demo/" + w.cfg.Service + "/counter"
	resp, err := w.cfg.Client.Get(ctx, key)
	if err != nil {
		return 0, err
	}
	var count int64
	if len(resp.Kvs) == 1 {
		count, _ = strconv.ParseInt(string(resp.Kvs[0].Value), 10, 64)
	}
	count++
	_, err = h.Txn(ctx).Then(clientv3.OpPut(key, strconv.FormatInt(count, 10))).Commit()
	return count, err
}

// lead is the singleton job: while leading, write a report every
// ReportEvery, fenced so a deposed leader's late write is refused.
func (w *Worker) lead(ctx context.Context, l *election.Leadership) error {
	w.leading.Store(true)
	defer w.leading.Store(false)
	key := w.cfg.Namespace + "/demo/" + w.cfg.Service + "/report"
	tick := time.NewTicker(w.cfg.ReportEvery)
	defer tick.Stop()
	for runs := 1; ; runs++ {
		report, _ := json.Marshal(map[string]any{
			"leader": w.cfg.ID, "token": l.Token(), "runs": runs, "at": time.Now().UTC(),
		})
		if _, err := l.Do(ctx, clientv3.OpPut(key, string(report))); err != nil {
			if errors.Is(err, election.ErrNotLeader) || ctx.Err() != nil {
				return nil // leadership ended: Run campaigns again
			}
			w.cfg.Log.Warn("report", "err", err)
		} else {
			w.m.reports.Add(ctx, 1)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
