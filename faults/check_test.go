package faults

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The checkers must catch what they are there to catch: each case breaks
// one rule in an otherwise clean history.

var t0 = time.Now()

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func TestCheckTerms(t *testing.T) {
	clean := []term{
		{who: "a", token: 10, start: at(0), end: at(10)},
		{who: "b", token: 20, start: at(11), end: at(30)},
		{who: "c", token: 30, start: at(31), end: at(40)},
	}
	require.NoError(t, checkTerms(clean))
	require.NoError(t, checkTerms(nil))

	for name, tc := range map[string]struct {
		terms []term
		msg   string
	}{
		"overlap with the previous term": {
			terms: []term{clean[0], {who: "b", token: 20, start: at(5), end: at(30)}},
			msg:   "overlap: a (token 10",
		},
		"overlap with a long earlier term": {
			// c overlaps a, which began before b and ends after it.
			terms: []term{
				{who: "a", token: 10, start: at(0), end: at(100)},
				{who: "b", token: 20, start: at(0), end: at(1), lost: true},
				{who: "c", token: 30, start: at(50), end: at(60)},
			},
			msg: "overlap: a (token 10",
		},
		"token going back": {
			terms: []term{clean[0], {who: "b", token: 5, start: at(20), end: at(30)}},
			msg:   "token went back: b got 5",
		},
	} {
		t.Run(name, func(t *testing.T) {
			err := checkTerms(tc.terms)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.msg)
		})
	}

	// A term whose holder saw the loss is not counted: it may overlap.
	lostOverlap := append(clean, term{who: "d", token: 25, start: at(12), end: at(35), lost: true})
	require.NoError(t, checkTerms(lostOverlap))
}

func TestCheckWithin(t *testing.T) {
	terms := []term{{who: "a", token: 10, start: at(0), end: at(10)}}
	in := write{id: 1, who: "a", token: 10, invoke: at(1), ret: at(2), outcome: applied}
	require.NoError(t, checkWithin([]write{in}, terms))

	late := in
	late.ret = at(11)
	require.ErrorContains(t, checkWithin([]write{late}, terms), "outside its terms")
	// The same holder may hold twice in a row under one token.
	again := append(terms, term{who: "a", token: 10, start: at(11), end: at(20)})
	second := in
	second.invoke, second.ret = at(12), at(13)
	require.NoError(t, checkWithin([]write{in, second}, again))
	require.NoError(t, checkTerms(again))
	// A refused or unknown write may come late: it was not applied, or
	// the log check judges it.
	late.outcome = unknown
	require.NoError(t, checkWithin([]write{late}, terms))

	stranger := in
	stranger.who = "b"
	require.ErrorContains(t, checkWithin([]write{stranger}, terms), "under a's token")
	orphan := in
	orphan.token = 11
	require.ErrorContains(t, checkWithin([]write{orphan}, terms), "no recorded term")
}

func TestCheckLog(t *testing.T) {
	writes := []write{
		{id: 1, who: "a", token: 10, outcome: applied, rev: 11, oldest: 10},
		{id: 2, who: "a", token: 10, outcome: unknown},
		{id: 3, who: "a", token: 10, outcome: refused},
		{id: 4, who: "b", token: 20, outcome: applied, rev: 21, oldest: 20},
		{id: 5, who: "b", token: 20, outcome: unknown},
	}
	log := []entry{
		{id: 4, who: "b", token: 20, rev: 21},
		{id: 1, who: "a", token: 10, rev: 11},
		{id: 2, who: "a", token: 10, rev: 12}, // an unknown write may be applied
	}
	require.NoError(t, checkLog(writes, log))

	for name, tc := range map[string]struct {
		writes []write
		log    []entry
		msg    string
	}{
		"acknowledged write lost": {
			writes: writes, log: []entry{log[1], log[2]},
			msg: "write 4 by b (token 20) was acknowledged at revision 21 and is gone",
		},
		"refused write applied": {
			writes: writes, log: append(log, entry{id: 3, who: "a", token: 10, rev: 13}),
			msg: "write 3 by a (token 10) was refused",
		},
		"older holder writes after a newer one": {
			// a's write of unknown outcome landed late, after b's.
			writes: writes, log: []entry{log[0], log[1], {id: 2, who: "a", token: 10, rev: 25}},
			msg: "tokens went back: a wrote under 10 at revision 25 after b wrote under 20 at revision 21",
		},
		"committed while another key was the oldest": {
			writes: []write{{id: 1, who: "a", token: 10, outcome: applied, rev: 11, oldest: 9}},
			log:    []entry{{id: 1, who: "a", token: 10, rev: 11}},
			msg:    "oldest key had create revision 9",
		},
		"phantom": {
			writes: writes, log: append(log, entry{id: 9, who: "z", token: 99, rev: 99}),
			msg: "never written",
		},
		"wrong revision": {
			writes: writes, log: []entry{{id: 1, who: "a", token: 10, rev: 12}, log[0]},
			msg: "told revision 11",
		},
	} {
		t.Run(name, func(t *testing.T) {
			err := checkLog(tc.writes, tc.log)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.msg)
		})
	}
}
