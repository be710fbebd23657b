// Package e2e runs the demo as a user would: it builds the gateway and
// worker binaries, starts them as processes, kills and restarts them, and
// checks what a client of the gateway and a person looking at the status
// page see.
package e2e
