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

func (w *Worker) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /critical", w.critical)
	mux.HandleFunc("/", w.hello)
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
	writeJSON(rw, http.StatusOK, map[string]any{
		"id":      w.cfg.ID,
		"service": w.cfg.Service,
		"addr":    w.Addr(),
		"leader":  w.Leading(),
		"path":    r.URL.Path,
	})
}

// critical increments a counter in etcd under the service's lock. The read
// and the write are not one transaction on purpose: the lock is what makes
// them safe, and the write is fenced so that a holder that lost the lock
// (paused, cut off) cannot overwrite a newer holder's count.
func (w *Worker) critical(rw http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	h, err := w.mu.Lock(ctx)
	if err != nil {
		writeJSON(rw, http.StatusServiceUnavailable, map[string]any{"id": w.cfg.ID, "error": err.Error()})
		return
	}
	defer h.Release(context.WithoutCancel(ctx))
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
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
