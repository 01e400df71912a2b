package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sizeUnits follows postgresql.conf, where kB, MB and GB are powers of 1024; the IEC spellings (KiB, ...)
// mean the same. Units are matched without regard to case.
var sizeUnits = map[string]int{
	"": 1, "b": 1,
	"kb": 1 << 10, "kib": 1 << 10,
	"mb": 1 << 20, "mib": 1 << 20,
	"gb": 1 << 30, "gib": 1 << 30,
}

// parseSize reads a size such as "512kB", "64MB", "8 MiB" or "1024" (bytes). It must be positive.
func parseSize(s string) (int, error) {
	t := strings.TrimSpace(s)
	digits := len(t) - len(strings.TrimLeft(t, "0123456789"))
	unit, ok := sizeUnits[strings.ToLower(strings.TrimSpace(t[digits:]))]
	if digits == 0 || !ok {
		return 0, fmt.Errorf("invalid size %q (use bytes, or a number with kB, MB or GB, e.g. \"64MB\")", s)
	}
	n, err := strconv.Atoi(t[:digits])
	if err != nil || n > math.MaxInt/unit {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n * unit, nil
}
