package codec

import (
	"bytes"
	"reflect"
	"testing"
)

// pgMsg is what every pgproto3 message type implements.
type pgMsg interface {
	Encode(dst []byte) ([]byte, error)
	Decode(src []byte) error
}

func pgEncode(t *testing.T, m pgMsg) []byte {
	t.Helper()
	b, err := m.Encode(nil)
	if err != nil {
		t.Fatalf("pgproto3 %T.Encode: %v", m, err)
	}
	return b
}

// frameOne frames b, which must hold exactly one whole message, and returns it.
func frameOne(t *testing.T, b []byte) Message {
	t.Helper()
	m, n, err := ReadMessage(b, 0)
	if err != nil {
		t.Fatalf("ReadMessage: %v", err)
	}
	if n != len(b) {
		t.Fatalf("ReadMessage consumed %d of %d bytes", n, len(b))
	}
	return m
}

// equalish compares two values deeply, treating nil and empty slices alike except for the elements of a
// [][]byte, where nil is SQL NULL and must stay distinct from an empty value.
func equalish(a, b any) bool { return equalValue(reflect.ValueOf(a), reflect.ValueOf(b), false) }

func equalValue(a, b reflect.Value, nilMatters bool) bool {
	if a.IsValid() != b.IsValid() {
		return false
	}
	if !a.IsValid() {
		return true
	}
	if a.Type() != b.Type() {
		return false
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return equalValue(a.Elem(), b.Elem(), false)
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if !equalValue(a.Field(i), b.Field(i), false) {
				return false
			}
		}
		return true
	case reflect.Slice:
		if nilMatters && a.IsNil() != b.IsNil() {
			return false
		}
		if a.Len() != b.Len() {
			return false
		}
		inner := a.Type().Elem().Kind() == reflect.Slice
		for i := 0; i < a.Len(); i++ {
			if !equalValue(a.Index(i), b.Index(i), inner) {
				return false
			}
		}
		return true
	case reflect.Array:
		for i := 0; i < a.Len(); i++ {
			if !equalValue(a.Index(i), b.Index(i), false) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		for _, k := range a.MapKeys() {
			bv := b.MapIndex(k)
			if !bv.IsValid() || !equalValue(a.MapIndex(k), bv, false) {
				return false
			}
		}
		return true
	default:
		return a.Equal(b)
	}
}

// wantText checks a view against the expected text; views are never nil, even when empty.
func wantText(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	if got == nil || string(got) != want {
		t.Errorf("%s = %q (nil %v), want %q", what, got, got == nil, want)
	}
}

// wantValues checks a list of values, NULL (nil) distinct from empty.
func wantValues(t *testing.T, what string, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, want %d", what, len(got), len(want))
		return
	}
	for i := range got {
		if (got[i] == nil) != (want[i] == nil) || !bytes.Equal(got[i], want[i]) {
			t.Errorf("%s[%d] = %q (nil %v), want %q (nil %v)", what, i, got[i], got[i] == nil, want[i], want[i] == nil)
		}
	}
}

func wantInts[T comparable](t *testing.T, what string, got, want []T) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
		return
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("%s = %v, want %v", what, got, want)
			return
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func toUint16s(s []int16) []uint16 {
	if s == nil {
		return nil
	}
	out := make([]uint16, len(s))
	for i, v := range s {
		out[i] = uint16(v)
	}
	return out
}
