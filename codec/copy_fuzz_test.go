package codec

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// fuzzCopyOptions decodes the fuzzer's mode byte: bits 0-1 the format (text, CSV, binary, CSV with ESCAPE '\'),
// bit 2 HEADER, bit 3 a Postgres 18 server, bits 4-5 the key field (-1, 0, 1, 2), bit 6 FORCE_NULL and
// FORCE_NOT_NULL, bit 7 another NULL string and delimiter.
func fuzzCopyOptions(mode byte) (CopyOptions, int) {
	var opt CopyOptions
	switch mode & 3 {
	case 1:
		opt.Format = CopyCSV
	case 2:
		opt.Format = CopyBinary
	case 3:
		opt.Format, opt.Escape = CopyCSV, '\\'
	}
	opt.Header = mode&4 != 0
	if mode&8 != 0 {
		opt.ServerVersion = 180000
	}
	key := int(mode>>4&3) - 1
	if mode&64 != 0 && opt.Format == CopyCSV {
		opt.ForceNull, opt.ForceNotNull = mode&1 != 0, mode&1 == 0
	}
	if mode&128 != 0 {
		opt.Null, opt.NullSet, opt.Delimiter = "x", true, ';'
	}
	return opt, key
}

// FuzzCopySplitter splits a stream cut at random places: it must never panic, must hand over the same events
// however the stream is cut, those must be what the reference reader finds, and the handed bytes must rebuild
// the input.
func FuzzCopySplitter(f *testing.F) {
	for _, c := range copyCases {
		mode := byte(c.key+1) << 4
		switch {
		case c.opt.Format == CopyBinary:
			mode |= 2
		case c.opt.Format == CopyCSV && c.opt.Escape == '\\':
			mode |= 3
		case c.opt.Format == CopyCSV:
			mode |= 1
		}
		if c.opt.Header {
			mode |= 4
		}
		if c.opt.ServerVersion >= 180000 {
			mode |= 8
		}
		f.Add([]byte(c.in), mode, uint64(len(c.in)))
	}
	for i, c := range copySamples() {
		mode := byte(c.key+1) << 4
		switch c.opt.Format {
		case CopyCSV:
			mode |= 1
		case CopyBinary:
			mode |= 2
		}
		if c.opt.Header {
			mode |= 4
		}
		f.Add(c.in, mode, uint64(i))
	}
	f.Fuzz(func(t *testing.T, in []byte, mode byte, seed uint64) {
		opt, key := fuzzCopyOptions(mode)
		want, wantErr := refSplit(opt, key, in)
		whole, err := splitCopy(opt, key, in, nil)
		if errText(err) != errText(wantErr) || !eventsEqual(whole, want) {
			t.Fatalf("opt %+v key %d:\n got  %v %s\n want %v %s", opt, key, whole, errText(err), want, errText(wantErr))
		}
		checkConcat(t, in, whole, err)
		rng := rand.New(rand.NewPCG(seed, uint64(len(in))))
		var cuts []int
		for range rng.IntN(len(in) + 2) {
			cuts = append(cuts, rng.IntN(len(in)+1))
		}
		slices.Sort(cuts)
		evs, err2 := splitCopy(opt, key, in, cuts)
		if errText(err2) != errText(err) || !eventsEqual(evs, whole) {
			t.Fatalf("opt %+v key %d cuts %v:\n got  %v %s\n want %v %s", opt, key, cuts, evs, errText(err2), whole, errText(err))
		}
	})
}
