package status

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestReadAll(t *testing.T) {
	base := t.TempDir()
	for _, db := range []string{"zeta", "app"} {
		dir := filepath.Join(base, DirPrefix+db)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		s := &Status{Database: db, From: 1, To: 2, Phase: PhaseCopy, Updated: time.Now().UTC().Truncate(time.Second),
			Tables: []Table{{Name: "accounts", Kind: "sharded", RowsCopied: 10}}}
		if err := Write(dir, s); err != nil {
			t.Fatal(err)
		}
	}
	// Neither a directory without a progress file nor a file named like a state directory is a run.
	if err := os.Mkdir(filepath.Join(base, DirPrefix+"empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, DirPrefix+"app.log"), []byte("log\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadAll(base)
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if len(got) != 2 || got[0].Database != "app" || got[1].Database != "zeta" {
		t.Fatalf("ReadAll = %+v, want app then zeta", got)
	}
	if got[0].Tables[0].RowsCopied != 10 || got[0].To != 2 {
		t.Errorf("read back %+v", got[0])
	}
}
