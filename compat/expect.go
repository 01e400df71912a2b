package compat

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Expectations are the tests known to fail through pgshard: mode -> test -> reason.
type Expectations map[string]map[string]string

// ParseExpectations reads expected-failures.txt: one "<mode> <test> <reason>" per line; blank lines and lines
// starting with # are ignored. A line without a reason is an error: the file is where the reasons live.
func ParseExpectations(r io.Reader) (Expectations, error) {
	exp := Expectations{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			return nil, fmt.Errorf("line %d: want \"<mode> <test> <reason>\", got %q", n, line)
		}
		mode, test := f[0], f[1]
		if mode != "session" && mode != modeSessionFresh && mode != "transaction" {
			return nil, fmt.Errorf("line %d: mode %q is none of session, %s and transaction", n, mode, modeSessionFresh)
		}
		rest := strings.TrimSpace(line[len(mode):])
		reason := strings.TrimSpace(rest[len(test):])
		if exp[mode] == nil {
			exp[mode] = map[string]string{}
		}
		if _, dup := exp[mode][test]; dup {
			return nil, fmt.Errorf("line %d: %s %s listed twice", n, mode, test)
		}
		exp[mode][test] = reason
	}
	return exp, sc.Err()
}

// Comparison is one mode's run through pgshard set against the direct run.
type Comparison struct {
	Mode           string
	Direct         int      // tests that passed directly
	Proxied        int      // of those, the ones that passed through pgshard too
	Total          int      // tests run directly
	Expected       []string // passed directly, failed through pgshard, listed for this mode
	Unexpected     []string // passed directly, failed through pgshard, not listed: the suite fails
	Stale          []string // listed for this mode but passed through pgshard (or failed directly too)
	ExtraProxyPass []string // failed directly but passed through pgshard (only reported)
}

// Compare sets the proxied run of mode against the direct one. Only tests that pass directly count: a test
// failing directly (say, for this machine's locale) says nothing about pgshard.
func Compare(mode string, direct, proxied Results, exp Expectations) Comparison {
	c := Comparison{Mode: mode, Total: len(direct)}
	listed := exp[mode]
	for _, name := range direct.Passed() {
		c.Direct++
		if proxied[name] {
			c.Proxied++
			if _, ok := listed[name]; ok {
				c.Stale = append(c.Stale, name)
			}
			continue
		}
		if _, ok := listed[name]; ok {
			c.Expected = append(c.Expected, name)
		} else {
			c.Unexpected = append(c.Unexpected, name)
		}
	}
	for name := range listed {
		if !direct[name] {
			c.Stale = append(c.Stale, name)
		}
	}
	for name, ok := range proxied {
		if ok && !direct[name] {
			c.ExtraProxyPass = append(c.ExtraProxyPass, name)
		}
	}
	sort.Strings(c.Stale)
	sort.Strings(c.ExtraProxyPass)
	return c
}

// modeSessionFresh is session mode with pool.server_reuse false: each client session gets a backend of its own.
const modeSessionFresh = "session-fresh"
