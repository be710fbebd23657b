//go:build race

package e2e

// raceBuild makes the demo binaries race-enabled when the tests are: the
// end-to-end tests then also look for data races in the gateway and workers.
const raceBuild = true
