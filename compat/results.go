package compat

import (
	"bufio"
	"io"
	"regexp"
	"sort"
)

// statusLine matches pg_regress's line for one test, serial ("test name ... ok") or in a parallel group
// ("     name ... FAILED"); "failed (ignored)" counts as a failure, since the suite compares outcomes.
var statusLine = regexp.MustCompile(`^(?:test +|\s+)(\S+)\s+\.\.\. (ok|FAILED|failed \(ignored\))`)

// Results maps each test that pg_regress ran to whether it passed.
type Results map[string]bool

// ParseResults reads pg_regress's output (its regression.out file, or what it printed).
func ParseResults(r io.Reader) (Results, error) {
	res := Results{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if m := statusLine.FindStringSubmatch(sc.Text()); m != nil {
			res[m[1]] = m[2] == "ok"
		}
	}
	return res, sc.Err()
}

// Passed returns the names of the tests that passed, sorted.
func (r Results) Passed() []string {
	var names []string
	for name, ok := range r {
		if ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}
