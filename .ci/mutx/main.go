// Command mutx applies gremlins v0.6.0's default mutants (the same tokens
// and replacements, found from the syntax tree: comparisons bounded and
// negated, + - * / % swapped, a unary minus dropped, ++ and -- swapped) to
// one file of a package, optionally only within a range of lines, one at a
// time through `go test -overlay` (the tree is never modified), and prints
// each as KILLED (with the first failing test), LIVED, TIMED_OUT or
// NOT_VIABLE (it does not compile). Where .ci/mutate measures whole files,
// this measures part of one, checks that a new test kills given mutants
// (-only), or runs the mutants of a line range with a narrower -run:
//
//	go run ./.ci/mutx -pkg ./segments -file writer.go -from 373 -run '^TestRoundTrip$'
//	go run ./.ci/mutx -pkg ./cache -file options.go -only 86:16,92:31:CONDITIONALS_BOUNDARY -run '^TestOptionsValidateEdges$'
//	go run ./.ci/mutx -pkg ./segments -file stats.go -n   # list the mutants only
//
// A unary or binary minus yields two mutants, as in gremlins
// (INVERT_NEGATIVES and ARITHMETIC_BASE, the same text): the second is
// counted with the first's result. See docs/testing.md, "Mutation testing".
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

type mutant struct {
	Line, Col, Off int
	Type           string
	From, To       string
}

var repl = map[string]map[token.Token]token.Token{
	"ARITHMETIC_BASE":       {token.ADD: token.SUB, token.MUL: token.QUO, token.QUO: token.MUL, token.REM: token.MUL, token.SUB: token.ADD},
	"CONDITIONALS_BOUNDARY": {token.GEQ: token.GTR, token.GTR: token.GEQ, token.LEQ: token.LSS, token.LSS: token.LEQ},
	"CONDITIONALS_NEGATION": {token.EQL: token.NEQ, token.GEQ: token.LSS, token.GTR: token.LEQ, token.LEQ: token.GTR, token.LSS: token.GEQ, token.NEQ: token.EQL},
	"INCREMENT_DECREMENT":   {token.DEC: token.INC, token.INC: token.DEC},
	"INVERT_NEGATIVES":      {token.SUB: token.ADD},
}

var order = map[token.Token][]string{
	token.ADD: {"ARITHMETIC_BASE"}, token.MUL: {"ARITHMETIC_BASE"}, token.QUO: {"ARITHMETIC_BASE"}, token.REM: {"ARITHMETIC_BASE"},
	token.SUB: {"INVERT_NEGATIVES", "ARITHMETIC_BASE"},
	token.DEC: {"INCREMENT_DECREMENT"}, token.INC: {"INCREMENT_DECREMENT"},
	token.EQL: {"CONDITIONALS_NEGATION"}, token.NEQ: {"CONDITIONALS_NEGATION"},
	token.GEQ: {"CONDITIONALS_BOUNDARY", "CONDITIONALS_NEGATION"}, token.GTR: {"CONDITIONALS_BOUNDARY", "CONDITIONALS_NEGATION"},
	token.LEQ: {"CONDITIONALS_BOUNDARY", "CONDITIONALS_NEGATION"}, token.LSS: {"CONDITIONALS_BOUNDARY", "CONDITIONALS_NEGATION"},
}

func list(path string, from, to int) ([]mutant, []byte) {
	src, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	fs := token.NewFileSet()
	f, err := parser.ParseFile(fs, path, src, parser.ParseComments)
	if err != nil {
		panic(err)
	}
	var ms []mutant
	ast.Inspect(f, func(n ast.Node) bool {
		var tok token.Token
		var pos token.Pos
		switch n := n.(type) {
		case *ast.AssignStmt:
			tok, pos = n.Tok, n.TokPos
		case *ast.BinaryExpr:
			tok, pos = n.Op, n.OpPos
		case *ast.IncDecStmt:
			tok, pos = n.Tok, n.TokPos
		case *ast.UnaryExpr:
			tok, pos = n.Op, n.OpPos
		default:
			return true
		}
		p := fs.Position(pos)
		if p.Line < from || p.Line > to {
			return true
		}
		for _, t := range order[tok] {
			ms = append(ms, mutant{p.Line, p.Column, p.Offset, t, tok.String(), repl[t][tok].String()})
		}
		return true
	})
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].Off < ms[j].Off })
	return ms, src
}

func main() {
	pkg := flag.String("pkg", "", "package dir, e.g. ./segments")
	file := flag.String("file", "", "file name in the package")
	from := flag.Int("from", 1, "first line")
	to := flag.Int("to", 1<<30, "last line")
	run := flag.String("run", "", "go test -run")
	skip := flag.String("skip", "", "go test -skip")
	timeout := flag.Duration("timeout", 3*time.Minute, "per mutant")
	only := flag.String("only", "", "comma-separated line:col[:TYPE] to run")
	dry := flag.Bool("n", false, "list only")
	memMB := flag.Int("mem", 4096, "ulimit -v in MiB")
	flag.Parse()
	path, _ := filepath.Abs(filepath.Join(strings.Fields(*pkg)[0], *file))
	ms, src := list(path, *from, *to)
	sel := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		if s != "" {
			sel[s] = true
		}
	}
	work, _ := os.MkdirTemp(os.Getenv("MUTX_DIR"), "mutx")
	defer os.RemoveAll(work)
	failRe := regexp.MustCompile(`--- FAIL: (\S+)`)
	counts := map[string]int{}
	done := map[string]string{} // same mutated text (unary/binary SUB twice): same result
	for _, m := range ms {
		id := fmt.Sprintf("%d:%d", m.Line, m.Col)
		if len(sel) > 0 && !sel[id] && !sel[id+":"+m.Type] {
			continue
		}
		label := fmt.Sprintf("%s at %s:%d:%d (%s -> %s)", m.Type, *file, m.Line, m.Col, m.From, m.To)
		if *dry {
			fmt.Println("RUNNABLE", label)
			continue
		}
		key := fmt.Sprintf("%d:%s", m.Off, m.To)
		if r, ok := done[key]; ok {
			counts[strings.Fields(r)[0]]++
			fmt.Println(r[:strings.Index(r, " ")], label, "(same as the previous mutant)")
			continue
		}
		mut := append(append(append([]byte{}, src[:m.Off]...), m.To...), src[m.Off+len(m.From):]...)
		mf := filepath.Join(work, "m.go")
		os.WriteFile(mf, mut, 0o644)
		ov, _ := json.Marshal(map[string]any{"Replace": map[string]string{path: mf}})
		of := filepath.Join(work, "o.json")
		os.WriteFile(of, ov, 0o644)
		args := fmt.Sprintf("ulimit -v %d; exec go test -overlay %s -count=1 -failfast -timeout %s", *memMB*1024, of, (*timeout + 30*time.Second).String())
		if *run != "" {
			args += " -run '" + *run + "'"
		}
		if *skip != "" {
			args += " -skip '" + *skip + "'"
		}
		args += " " + *pkg
		ctx, cancel := context.WithTimeout(context.Background(), *timeout+60*time.Second)
		cmd := exec.CommandContext(ctx, "bash", "-c", args)
		cmd.WaitDelay = 5 * time.Second
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		err := cmd.Run()
		timedOut := ctx.Err() == context.DeadlineExceeded
		cancel()
		el := time.Since(start).Round(time.Second)
		o := out.String()
		var st, why string
		switch {
		case err == nil:
			st = "LIVED"
		case strings.Contains(o, "[build failed]") || strings.Contains(o, "[setup failed]"):
			st = "NOT_VIABLE"
		case strings.Contains(o, "panic: test timed out") || timedOut:
			st, why = "TIMED_OUT", "timeout"
		default:
			st = "KILLED"
			if f := failRe.FindStringSubmatch(o); f != nil {
				why = f[1]
			} else if strings.Contains(o, "panic:") {
				why = "panic"
			} else {
				why = "fail"
			}
		}
		counts[st]++
		r := fmt.Sprintf("%s %s [%s %s]", st, label, why, el)
		done[key] = r
		fmt.Println(r)
	}
	fmt.Printf("TOTAL killed %d lived %d timed_out %d not_viable %d\n", counts["KILLED"], counts["LIVED"], counts["TIMED_OUT"], counts["NOT_VIABLE"])
}
