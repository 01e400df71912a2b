package loop

import "testing"

func TestTxCommandOf(t *testing.T) {
	for _, tt := range []struct {
		sql  string
		want txCommand
	}{
		{"COMMIT", txCommand{kind: txEnd}},
		{"commit;", txCommand{kind: txEnd}},
		{"END", txCommand{kind: txEnd}},
		{"end work", txCommand{kind: txEnd}},
		{"ROLLBACK", txCommand{kind: txEnd, rollback: true}},
		{"abort transaction", txCommand{kind: txEnd, rollback: true}},
		{"COMMIT AND CHAIN", txCommand{kind: txEnd, chain: true}},
		{"commit work and chain", txCommand{kind: txEnd, chain: true}},
		{"COMMIT AND NO CHAIN", txCommand{kind: txEnd}},
		{"commit transaction and no chain", txCommand{kind: txEnd}},
		{"ROLLBACK AND CHAIN", txCommand{kind: txEnd, rollback: true, chain: true}},
		{"abort and chain;", txCommand{kind: txEnd, rollback: true, chain: true}},
		{"COMMIT PREPARED 'x'", txCommand{}},
		{"ROLLBACK TO SAVEPOINT a", txCommand{kind: txRollbackTo, name: "a"}},
		{"COMMIT; SELECT 1", txCommand{}},
		{"BEGIN", txCommand{kind: txBegin}},
		{"start transaction read only", txCommand{kind: txBegin}},
		{`SAVEPOINT "My SP"`, txCommand{kind: txSavepoint, name: "My SP"}},
		{"RELEASE SAVEPOINT A", txCommand{kind: txRelease, name: "a"}},
		{"release b;", txCommand{kind: txRelease, name: "b"}},
		{"rollback work to b", txCommand{kind: txRollbackTo, name: "b"}},
		{"SAVEPOINT a; SELECT 1", txCommand{}},
		{"SET pgshard.shard = 1", txCommand{kind: txSetShard, name: "pgshard.shard", value: "1"}},
		{"RESET pgshard.sharding_key", txCommand{kind: txSetShard, name: "pgshard.sharding_key", reset: true}},
		{"SET search_path = x", txCommand{}},
	} {
		if got := txCommandOf(tt.sql); got != tt.want {
			t.Errorf("txCommandOf(%q) = %+v, want %+v", tt.sql, got, tt.want)
		}
	}
}
