package store

import (
	"slices"
	"strings"
)

// Set-oriented statements: one statement writes the rows of many requests. The rows arrive as a
// VALUES list in a common table expression, v, that the statement reads like a table; both SQLite
// and PostgreSQL run the same text. The list is padded with rows of NULLs to the next of a few
// sizes (powers of two and the halfway points between them: 1, 2, 3, 4, 6, 8, 12, ...), which the
// statement skips (its key column is never NULL in a real row), so each statement has a few shapes
// only and every shape stays prepared, and padding is at most a third of a statement's rows.

// col is a column of v and the SQL type its values are cast to: the casts type a PostgreSQL
// parameter that only a VALUES list would otherwise leave untyped (SQLite takes the affinity).
type col struct{ name, typ string }

// setStmt is a statement over v, in every padded size up to maxSetRows rows.
type setStmt struct {
	cols  []col
	texts []string // by the padded size's place in setSizes
}

// maxSetRows bounds the rows of one statement; more rows take more statements.
const maxSetRows = 128

// setSizes are the padded sizes, ascending, up to maxSetRows.
var setSizes = func() []int {
	sizes := []int{1, 2}
	for n := 4; n <= maxSetRows; n *= 2 {
		sizes = append(sizes, n*3/4, n)
	}
	return sizes
}()

// newSetStmt builds "WITH v(cols) AS (VALUES ...) <body>" in every padded size.
func newSetStmt(cols []col, body string) *setStmt {
	s := &setStmt{cols: cols}
	row := make([]string, len(cols))
	names := make([]string, len(cols))
	for i, c := range cols {
		row[i], names[i] = "CAST(? AS "+c.typ+")", c.name
	}
	one := "(" + strings.Join(row, ",") + ")"
	for _, n := range setSizes {
		s.texts = append(s.texts, "WITH v ("+strings.Join(names, ", ")+") AS (VALUES "+one+strings.Repeat(","+one, n-1)+") "+body)
	}
	return s
}

// sizeIndex is the place in setSizes of the padded size for n rows (1 ≤ n ≤ maxSetRows).
func sizeIndex(n int) int {
	i, _ := slices.BinarySearch(setSizes, n)
	return i
}

// padded is the number of rows a statement for n rows has.
func padded(n int) int { return setSizes[sizeIndex(max(n, 1))] }

// text is the statement for n rows (1 ≤ n ≤ maxSetRows).
func (s *setStmt) text(n int) string { return s.texts[sizeIndex(n)] }

// setArgs collects the rows of one set statement.
type setArgs struct {
	st   *setStmt
	vals []any
}

func (s *setStmt) args(capRows int) *setArgs {
	return &setArgs{st: s, vals: make([]any, 0, padded(min(max(capRows, 1), maxSetRows))*len(s.cols))}
}

// add appends one row: a value per column, in order.
func (a *setArgs) add(vals ...any) {
	if len(vals) != len(a.st.cols) {
		panic("store: set statement row of the wrong width")
	}
	a.vals = append(a.vals, vals...)
}

// rows is the number of rows added.
func (a *setArgs) rows() int { return len(a.vals) / len(a.st.cols) }

// each calls run with the statements that write the rows, at most maxSetRows each, padded.
func (a *setArgs) each(run func(query string, args []any) error) error {
	w := len(a.st.cols)
	for start := 0; start < len(a.vals); start += maxSetRows * w {
		chunk := a.vals[start:min(start+maxSetRows*w, len(a.vals))]
		n := len(chunk) / w
		args := chunk
		if pad := (padded(n) - n) * w; pad > 0 {
			args = append(chunk[:len(chunk):len(chunk)], make([]any, pad)...)
		}
		if err := run(a.st.text(n), args); err != nil {
			return err
		}
	}
	return nil
}
