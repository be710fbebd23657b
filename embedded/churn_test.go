package embedded_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/rosterkit/roster/embedded"
	"github.com/rosterkit/roster/embedded/embeddedtest"
)

// churnQuota is the backend quota of the churn tests: small, so that what
// takes a production member weeks happens in seconds.
const churnQuota = 32 << 20

// churnDuration is how long the churn runs with the policy on: short in CI,
// ten minutes with ROSTER_LONG=1.
func churnDuration() time.Duration {
	if os.Getenv("ROSTER_LONG") == "1" {
		return 10 * time.Minute
	}
	return 20 * time.Second
}

// TestChurn runs the same workload against a member with the default
// defragmentation policy and against one without: registrations that come
// and go in waves with large values, a lock taken and released, an election
// won and resigned. Every other wave's values are large, and half of each
// wave outlives it, so the pages a wave frees are holes too small for the
// next one: the file grows although what it holds does not. With the policy
// the file stays bounded and no write is refused; without, the quota is
// reached and every write refused.
func TestChurn(t *testing.T) {
	t.Parallel()
	t.Run("WithPolicy", func(t *testing.T) {
		t.Parallel()
		h := &recordingHandler{}
		m := embeddedtest.Start(t, churnOptions(
			embedded.WithLogger(slog.New(h)),
			// The default thresholds, looked at more often than every 10 s:
			// the run is short.
			embedded.WithDefragPolicy(embedded.DefragPolicy{CheckInterval: 250 * time.Millisecond}),
		)...)
		// At least churnDuration, and on until the policy had something to
		// do: on a loaded machine the workload writes less in that time.
		r := runChurn(t, m, churnDuration(), churnDuration()+2*time.Minute, func(*churnMeter) bool {
			return m.Server().Status().Defrag.Count > 0
		})
		st := m.Server().Status()
		t.Logf("with the policy: %s; %d defragmentations, file now %d of %d bytes in use",
			r, st.Defrag.Count, st.DBSize, st.DBSizeInUse)
		require.Zero(t, r.nospace, "no write is refused for want of space")
		require.Less(t, r.longestRefusal, 3*time.Second, "longest time writes were refused")
		require.Less(t, r.maxSize, int64(churnQuota*9/10), "the file stays below 90%% of the quota")
		require.Positive(t, st.Defrag.Count, "the policy defragmented")
		// The policy runs on, so the log may already hold one more.
		require.GreaterOrEqual(t, h.count("defragmentation finished"), st.Defrag.Count, "each defragmentation is logged")
	})
	t.Run("WithoutPolicy", func(t *testing.T) {
		t.Parallel()
		m := embeddedtest.Start(t, churnOptions(
			embedded.WithDefragPolicy(embedded.DefragPolicy{Disabled: true}),
			embedded.WithNoSpaceRecovery(embedded.NoSpaceRecovery{Disabled: true}),
		)...)
		r := runChurn(t, m, 0, 5*time.Minute, (*churnMeter).noSpace) // 30-40 s unloaded
		st := m.Server().Status()
		t.Logf("without the policy: %s; file %d bytes, %d in use", r, st.DBSize, st.DBSizeInUse)
		require.Positive(t, r.nospace, "the quota is reached")
		require.Less(t, float64(st.DBSizeInUse), 0.8*churnQuota, "what the file holds fits: the free pages fill the quota")
		require.ErrorIs(t, m.Server().Healthy(ctxT(t, 5*time.Second)), embedded.ErrNoSpace)
	})
}

func churnOptions(opts ...embedded.Option) []embedded.Option {
	return append([]embedded.Option{
		embedded.WithQuotaBackendBytes(churnQuota),
		embedded.WithAutoCompaction(time.Second),
	}, opts...)
}

// churnResult is what a churn run measured.
type churnResult struct {
	writes, refused, nospace int
	longestRefusal           time.Duration // from a refused write to the next one accepted
	slowest                  time.Duration // the longest a write took
	maxSize                  int64         // the largest file seen
	took                     time.Duration
}

func (r churnResult) String() string {
	return fmt.Sprintf("%d writes in %v, %d refused (%d NOSPACE), longest refusal %v, slowest write %v, largest file %d bytes",
		r.writes, r.took.Round(time.Millisecond), r.refused, r.nospace, r.longestRefusal, r.slowest.Round(time.Millisecond), r.maxSize)
}

// churnMeter records the writes of a churn run.
type churnMeter struct {
	mu sync.Mutex
	churnResult
	failingSince time.Time
}

// write runs one write and records how it went.
func (c *churnMeter) write(ctx context.Context, f func(context.Context) error) error {
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err := f(wctx)
	cancel()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	c.slowest = max(c.slowest, now.Sub(start))
	if err != nil {
		c.refused++
		if errors.Is(err, rpctypes.ErrNoSpace) {
			c.nospace++
		}
		if c.failingSince.IsZero() {
			c.failingSince = start
		}
		return err
	}
	if !c.failingSince.IsZero() {
		c.longestRefusal = max(c.longestRefusal, now.Sub(c.failingSince))
		c.failingSince = time.Time{}
	}
	return nil
}

func (c *churnMeter) noSpace() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nospace > 0
}

// runChurn drives the workload until done says it did enough, for atLeast
// and no more than atMost.
func runChurn(t *testing.T, m *embeddedtest.Member, atLeast, atMost time.Duration, done func(*churnMeter) bool) churnResult {
	cli := m.Client()
	ctx, cancel := context.WithTimeout(context.Background(), atMost)
	defer cancel()
	var meter churnMeter
	start := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() { registrationWaves(ctx, cli, &meter) })
	wg.Go(func() { lockChurn(ctx, cli, &meter) })
	wg.Go(func() { electionChurn(ctx, cli, &meter) })
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var maxSize int64
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C: // sampling the file's size
		}
		maxSize = max(maxSize, m.Server().Status().DBSize)
		if time.Since(start) >= atLeast && done(&meter) {
			cancel()
		}
	}
	wg.Wait()
	meter.mu.Lock()
	defer meter.mu.Unlock()
	r := meter.churnResult
	r.maxSize, r.took = maxSize, time.Since(start)
	if !meter.failingSince.IsZero() {
		r.longestRefusal = max(r.longestRefusal, time.Since(meter.failingSince))
	}
	return r
}

// registrationWaves registers instances in waves of about 5 MiB each, one
// lease per instance, at about 5 MiB/s. Odd waves carry 512 KiB values,
// even ones 16 KiB; every other instance of a wave stays registered through
// the next wave.
func registrationWaves(ctx context.Context, cli *clientv3.Client, meter *churnMeter) {
	const (
		perWave = 5 << 20
		rate    = 5 << 20 // bytes per second
	)
	var survivors []clientv3.LeaseID
	for wave := 0; ctx.Err() == nil; wave++ {
		size := 16 << 10
		if wave%2 == 1 {
			size = 512 << 10
		}
		val := strings.Repeat("v", size)
		pace := time.NewTicker(time.Duration(size) * time.Second / rate)
		var leases []clientv3.LeaseID
		for i := 0; i < perWave/size && ctx.Err() == nil; i++ {
			select {
			case <-ctx.Done():
			case <-pace.C: // the workload's pace
			}
			var id clientv3.LeaseID
			err := meter.write(ctx, func(ctx context.Context) error {
				l, err := cli.Grant(ctx, 60)
				if err != nil {
					return err
				}
				id = l.ID
				_, err = cli.Put(ctx, fmt.Sprintf("/churn/services/w%d/%d", wave, i), val, clientv3.WithLease(id))
				return err
			})
			if id != 0 {
				leases = append(leases, id)
			}
			if err != nil && !errors.Is(err, rpctypes.ErrNoSpace) && ctx.Err() == nil {
				continue
			}
		}
		pace.Stop()
		for _, id := range survivors {
			cli.Revoke(ctx, id)
		}
		survivors = survivors[:0]
		for i, id := range leases {
			if i%2 == 0 {
				survivors = append(survivors, id)
			} else {
				cli.Revoke(ctx, id)
			}
		}
	}
}

// lockChurn takes and releases a lock, as a worker guarding a job would.
func lockChurn(ctx context.Context, cli *clientv3.Client, meter *churnMeter) {
	churnSession(ctx, cli, meter, func(s *concurrency.Session) error {
		mu := concurrency.NewMutex(s, "/churn/locks/job")
		return meter.write(ctx, func(ctx context.Context) error {
			if err := mu.Lock(ctx); err != nil {
				return err
			}
			return mu.Unlock(ctx)
		})
	})
}

// electionChurn wins an election with a 16 KiB value and resigns.
func electionChurn(ctx context.Context, cli *clientv3.Client, meter *churnMeter) {
	val := strings.Repeat("e", 16<<10)
	churnSession(ctx, cli, meter, func(s *concurrency.Session) error {
		e := concurrency.NewElection(s, "/churn/elections/leader")
		return meter.write(ctx, func(ctx context.Context) error {
			if err := e.Campaign(ctx, val); err != nil {
				return err
			}
			return e.Resign(ctx)
		})
	})
}

// churnSession runs step every 50 ms on a session, making a new session
// when one ends or cannot be made.
func churnSession(ctx context.Context, cli *clientv3.Client, meter *churnMeter, step func(*concurrency.Session) error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var s *concurrency.Session
	defer func() {
		if s != nil {
			s.Orphan()
		}
	}()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			return
		case <-tick.C: // the workload's pace
		}
		if s == nil {
			err := meter.write(ctx, func(wctx context.Context) error {
				var err error
				s, err = concurrency.NewSession(cli, concurrency.WithTTL(5), concurrency.WithContext(ctx))
				return err
			})
			if err != nil {
				s = nil
				continue
			}
		}
		select {
		case <-s.Done():
			s = nil
			continue
		default:
		}
		step(s)
	}
}
