package merge

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/pgshard/pgshard/codec"
)

// Binary encodings of test values.

func int8Bin(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }
func int4Bin(v int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }
func int2Bin(v int16) []byte { return binary.BigEndian.AppendUint16(nil, uint16(v)) }
func f8Bin(v float64) []byte { return binary.BigEndian.AppendUint64(nil, math.Float64bits(v)) }
func f4Bin(v float32) []byte { return binary.BigEndian.AppendUint32(nil, math.Float32bits(v)) }
func numBin(t testing.TB, s string) []byte {
	t.Helper()
	var d decimal
	if !d.parse(codec.FormatText, []byte(s)) {
		t.Fatalf("numBin(%q): not a numeric", s)
	}
	return d.appendBinary(nil)
}

func sqlstate(err error) string {
	var e *codec.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
