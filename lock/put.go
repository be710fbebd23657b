package lock

import (
	"context"
	"fmt"
	"math/rand/v2"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/keys"
	"github.com/rosterkit/roster/internal/recipe"
	"github.com/rosterkit/roster/session"
)

// maxPutAttempts bounds the retries of put on a name collision, which
// takes two acquisitions of one lease drawing the same random suffix.
const maxPutAttempts = 4

// put queues one acquisition of a semaphore or RW lock: a key of its own,
// prefix + tag + lease ID in hex + "-" + a random suffix, attached to the
// session's lease. Unlike the mutex's one key per lease, this lets one
// session hold many permits or read locks at once. The extra ops run in the
// same transaction, after the put; their responses are returned.
func put(ctx context.Context, q recipe.Queue, s *session.Session, tag, value string, extra ...clientv3.Op) (recipe.Entry, []*pb.ResponseOp, error) {
	cli := q.Client
	for range maxPutAttempts {
		key := keys.LeaseKey(q.Prefix+tag, int64(s.Lease())) + fmt.Sprintf("-%08x", rand.Uint32())
		resp, err := recipe.Put(ctx, s, cli, key, q.Sweeper, func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return cli.Txn(ctx).
				If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
				Then(append([]clientv3.Op{clientv3.OpPut(key, value, clientv3.WithLease(s.Lease()))}, extra...)...).
				Commit()
		})
		if err != nil {
			return recipe.Entry{}, nil, err
		}
		if resp.Succeeded {
			rev := resp.Header.Revision
			return recipe.Entry{Key: key, Rev: rev, Header: rev, Value: value}, resp.Responses[1:], nil
		}
	}
	return recipe.Entry{}, nil, fmt.Errorf("queue under %s: no free key name after %d attempts", q.Prefix, maxPutAttempts)
}

// withdraw takes e, of session s, back out of q after an acquisition
// failed with err, and says so if that failed too.
func withdraw(q recipe.Queue, s *session.Session, e recipe.Entry, err error) error {
	if werr := q.Withdraw(s, e); werr != nil {
		return fmt.Errorf("%w (and withdrawing %s: %w)", err, e.Key, werr)
	}
	return err
}

// count reads the count of a WithCountOnly range response.
func count(r *pb.ResponseOp) int64 { return r.GetResponseRange().GetCount() }
