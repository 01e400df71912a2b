package status

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// FileName is the name of the progress file inside a reshard state directory.
const FileName = "status.json"

// DirPrefix starts the name of the default state directory of a reshard run, "reshard-<database>", made next
// to the config file.
const DirPrefix = "reshard-"

// The phases of a run, in order; Failed and Aborted may follow any of them.
const (
	PhaseCheck     = "check"
	PhaseSchema    = "schema"
	PhaseCopy      = "copy"
	PhaseIndexes   = "indexes"
	PhaseStreaming = "streaming"
	PhaseCutover   = "cutover"
	PhaseDone      = "done"
	PhaseFailed    = "failed"
	PhaseAborted   = "aborted"
)

// Status is what a reshard run reports about itself.
type Status struct {
	Database string    `json:"database"`
	From     int       `json:"from_shards"`
	To       int       `json:"to_shards"`
	Phase    string    `json:"phase"`
	Started  time.Time `json:"started"`
	Updated  time.Time `json:"updated"`
	PID      int       `json:"pid"`
	Tables   []Table   `json:"tables"`
	// Replication lag, summed over the source shards: WAL bytes not yet applied to the destination, and the
	// age of the oldest change not yet applied (0 when caught up).
	LagBytes    int64   `json:"lag_bytes"`
	LagSeconds  float64 `json:"lag_seconds"`
	Applied     int64   `json:"changes_applied"`    // row changes applied from the slots
	RetainedWAL int64   `json:"retained_wal_bytes"` // WAL the run's slots make the sources keep, summed
	CopyRows    int64   `json:"copy_rows"`          // rows copied from the snapshots, once the copy is done
	CopySeconds float64 `json:"copy_seconds"`       // how long the copy took
	PauseMS     float64 `json:"write_pause_ms"`     // the write pause at cutover, once it happened
	Error       string  `json:"error,omitempty"`
}

// Table is the copy progress of one table.
type Table struct {
	Name       string  `json:"table"`
	Kind       string  `json:"kind"` // "sharded" or "replicated"
	RowsCopied int64   `json:"rows_copied"`
	RowsTotal  int64   `json:"rows_estimate"` // from the planner's statistics, so only an estimate
	RowsPerSec float64 `json:"rows_per_sec"`
	MBPerSec   float64 `json:"mb_per_sec"` // 10^6 bytes of COPY's binary format per second
	ETASeconds float64 `json:"eta_seconds"`
	Done       bool    `json:"done"`
}

// Write replaces the progress file in dir atomically (a reader sees the old or the new file, never half).
func Write(dir string, s *Status) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, FileName+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, FileName))
}

// Read reads the progress file in dir.
func Read(dir string) (*Status, error) {
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		return nil, err
	}
	var s Status
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, FileName), err)
	}
	return &s, nil
}

// ReadAll reads the progress files of every reshard state directory under base (the config file's directory),
// ordered by database. Directories without a readable file are skipped.
func ReadAll(base string) ([]*Status, error) {
	dirs, err := filepath.Glob(filepath.Join(base, DirPrefix+"*"))
	if err != nil {
		return nil, err
	}
	var out []*Status
	for _, d := range dirs {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			continue // a file named like a state directory (reshard-app.log), or one just removed
		}
		s, err := Read(d)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Database < out[j].Database })
	return out, nil
}
