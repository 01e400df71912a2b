package compat

import (
	"fmt"
	"io"
	"strings"
)

// Report writes the summary table of all modes and, per mode, the tests that pass directly but fail through
// pgshard with their listed reason, the unlisted ones marked NEW. It returns whether every mode is as expected
// (no unlisted failure).
func Report(w io.Writer, comps []Comparison, exp Expectations, outDir string) bool {
	ok := true
	fmt.Fprintf(w, "\n%-12s %8s %8s %8s %10s %6s\n", "mode", "tests", "direct", "pgshard", "fail(list)", "NEW")
	for _, c := range comps {
		fmt.Fprintf(w, "%-12s %8d %8d %8d %10d %6d\n", c.Mode, c.Total, c.Direct, c.Proxied, len(c.Expected), len(c.Unexpected))
	}
	for _, c := range comps {
		if len(c.Expected)+len(c.Unexpected)+len(c.Stale)+len(c.ExtraProxyPass) == 0 {
			fmt.Fprintf(w, "\n%s: every test that passes directly passes through pgshard\n", c.Mode)
			continue
		}
		fmt.Fprintf(w, "\n%s: pass directly, fail through pgshard (diffs: %s/%s/regression.diffs)\n", c.Mode, outDir, c.Mode)
		for _, name := range c.Unexpected {
			ok = false
			fmt.Fprintf(w, "  NEW   %-28s not in expected-failures.txt: add it with the reason, or fix pgshard\n", name)
		}
		for _, name := range c.Expected {
			fmt.Fprintf(w, "  known %-28s %s\n", name, exp[c.Mode][name])
		}
		if len(c.Stale) > 0 {
			fmt.Fprintf(w, "  listed in expected-failures.txt but not failing through pgshard now (remove the lines): %s\n",
				strings.Join(c.Stale, " "))
		}
		if len(c.ExtraProxyPass) > 0 {
			fmt.Fprintf(w, "  failed directly but passed through pgshard (flaky?): %s\n", strings.Join(c.ExtraProxyPass, " "))
		}
	}
	return ok
}
