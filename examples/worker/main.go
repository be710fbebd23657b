// Command worker is the demo service: it registers itself, takes part in the
// election of its service and, while it leads, writes a report every second;
// POST /critical runs a critical section under the service's lock and
// answers with the fencing token it held (?hold=2s keeps the lock longer, so
// that calls queue). GET /metrics serves its metrics and the SDK's in
// Prometheus text format. An operator's drain (roster drain worker ID) takes
// it out of rotation and out of the election until undrained. SIGINT or
// SIGTERM make it drain, finish in-flight requests, deregister, resign and
// exit 0; a start that fails prints the reason and exits 1.
//
//	go run ./examples/worker -etcd 127.0.0.1:2379
package main

import (
	"os"

	"github.com/rosterkit/roster/examples/internal/worker"
)

func main() {
	os.Exit(worker.Main(os.Args[1:], os.Stdout, os.Stderr))
}
