package loop

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// shellFiles are the files of loop/ that may speak gnet (shell.go says why).
var shellFiles = []string{"engine.go", "park.go", "shell.go", "tls.go"}

// TestOnlyTheShellSpeaksGnet keeps the session core free of the event loop: a core file that imports gnet,
// or reaches the loop's gnet.EventLoop (loopState.el), fails here.
func TestOnlyTheShellSpeaksGnet(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	core := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || slices.Contains(shellFiles, name) {
			continue
		}
		core++
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); strings.HasPrefix(path, "github.com/panjf2000/gnet") {
				t.Errorf("%s imports %s: only the shell (%v) may; give the core what it needs through conn or a shell function", name, path, shellFiles)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "el" {
				t.Errorf("%s uses the loop's gnet.EventLoop (loopState.el): go through the shell (closeConn, execute)", name)
			}
			return true
		})
	}
	if core < 20 {
		t.Fatalf("only %d core files found: is the test running in loop/?", core)
	}
}
