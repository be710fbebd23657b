package embedded

import (
	"fmt"

	"github.com/rosterkit/roster/internal/freeport"
)

// Ports are chosen below Linux's ephemeral range (32768+) so that they do not
// collide with the local ports of outgoing connections, and never handed out
// twice in one process, so members started in parallel do not race for them.
// Another process may still take one between choice and bind; Start retries.
var ports = freeport.Range{Low: 20000, High: 32000}

// freePort returns a port on host that was free a moment ago.
func freePort(host string) (int, error) {
	p, err := ports.Pick(host)
	if err != nil {
		return 0, fmt.Errorf("embedded: %w", err)
	}
	return p, nil
}
