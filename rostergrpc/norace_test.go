//go:build !race

package rostergrpc

const raceEnabled = false
