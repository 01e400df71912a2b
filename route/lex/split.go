package lex

// Split appends to dst the byte ranges of the top-level statements of sql and returns it. Statements are
// separated by ';' outside quotes, comments, dollar quotes and parentheses, and outside the BEGIN ... END body of
// CREATE [OR REPLACE] FUNCTION/PROCEDURE (BEGIN ATOMIC, tracked as psql does). A range runs from the statement's
// first token to the end of its last one, comments included (a pgshard hint before a statement belongs to it),
// whitespace and the ';' excluded. Statements made only of whitespace and comments are dropped.
func Split(sql string, dst [][2]int) [][2]int {
	var l Lexer
	l.KeepComments = true
	l.Reset(sql)
	src := l.src
	start, end := -1, 0
	content := false // a non-comment token since start
	depth := 0       // parentheses
	begins := 0      // BEGIN ... END nesting inside a function body
	idents := 0      // identifiers seen in this statement
	var head [4]byte // first letters of its leading CREATE / OR / REPLACE / FUNCTION / PROCEDURE words
	for {
		t := l.Next()
		if t.Kind == EOF {
			break
		}
		if t.Kind == Punct && src[t.Start] == ';' && depth == 0 && begins == 0 {
			if content {
				dst = append(dst, [2]int{start, end})
			}
			start, content, idents, head = -1, false, 0, [4]byte{}
			continue
		}
		if start < 0 {
			start = int(t.Start)
		}
		end = int(t.End)
		switch t.Kind {
		case Comment:
			continue
		case Punct:
			switch src[t.Start] {
			case '(':
				depth++
			case ')':
				if depth > 0 {
					depth--
				}
			}
		case Ident:
			text := src[t.Start:t.End]
			if idents < len(head) {
				for _, w := range [...]string{"create", "or", "replace", "function", "procedure"} {
					if equalFoldLower(text, w) {
						head[idents] = w[0]
					}
				}
			}
			idents++
			if depth == 0 && head[0] == 'c' && (head[1] == 'f' || head[1] == 'p' ||
				head[1] == 'o' && head[2] == 'r' && (head[3] == 'f' || head[3] == 'p')) {
				switch {
				case equalFoldLower(text, "begin"):
					begins++
				case equalFoldLower(text, "case"):
					if begins > 0 { // CASE ... END inside the body
						begins++
					}
				case equalFoldLower(text, "end"):
					if begins > 0 {
						begins--
					}
				}
			}
		}
		content = true
	}
	if content {
		dst = append(dst, [2]int{start, end})
	}
	return dst
}
