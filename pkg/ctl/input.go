package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// item is one object read from the operator's input, with where it came from.
type item struct {
	source string
	obj    v1.Object
}

// reader reads objects from -f arguments.
type reader struct {
	stdin  io.Reader
	stderr io.Writer
	goBin  string
}

// read reads every path ("-" is stdin) in order. Nothing is defaulted or validated here.
func (r *reader) read(ctx context.Context, paths []string) ([]item, error) {
	if len(paths) == 0 {
		return nil, errors.New("no input: pass -f FILE, -f DIR or -f -")
	}
	var items []item
	for _, p := range paths {
		got, err := r.readPath(ctx, p)
		if err != nil {
			return nil, err
		}
		items = append(items, got...)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("no objects found in %s", strings.Join(paths, ", "))
	}
	seen := map[v1.Key]string{}
	for _, it := range items {
		k := v1.KeyOf(it.obj)
		if prev, ok := seen[k]; ok {
			return nil, fmt.Errorf("%s is defined twice (%s and %s)", k, prev, it.source)
		}
		seen[k] = it.source
	}
	return items, nil
}

func (r *reader) readPath(ctx context.Context, p string) ([]item, error) {
	if p == "-" {
		b, err := io.ReadAll(r.stdin)
		if err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		return parseObjects("stdin", b)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		return parseObjects(p, b)
	}
	isMain, err := holdsMainPackage(p)
	if err != nil {
		return nil, err
	}
	if isMain {
		out, err := r.goRun(ctx, p)
		if err != nil {
			return nil, err
		}
		return parseObjects(p, out)
	}
	files, err := filepath.Glob(filepath.Join(p, "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var items []item
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		got, err := parseObjects(f, b)
		if err != nil {
			return nil, err
		}
		items = append(items, got...)
	}
	return items, nil
}

// holdsMainPackage reports whether dir has a non-test .go file declaring package main.
func holdsMainPackage(dir string) (bool, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return false, err
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.PackageClauseOnly)
		if err != nil {
			return false, fmt.Errorf("%s: %w", f, err)
		}
		if af.Name.Name == "main" {
			return true, nil
		}
	}
	return false, nil
}

// moduleRoot is the nearest directory at or above dir holding a go.mod.
func moduleRoot(dir string) (string, bool) {
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, true
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", false
		}
		d = parent
	}
}

// goRun runs the Go main package in dir from its module's root ("go run ./specs/hello") and
// returns its standard output. The spec's own stderr is passed through when it succeeds; when it
// fails, its last line goes into the error.
func (r *reader) goRun(ctx context.Context, dir string) ([]byte, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	runDir, pkg := abs, "."
	if root, ok := moduleRoot(abs); ok {
		rel, err := filepath.Rel(root, abs)
		if err != nil {
			return nil, err
		}
		runDir, pkg = root, "./"+filepath.ToSlash(rel)
		if rel == "." {
			pkg = "."
		}
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, r.goBin, "run", pkg)
	cmd.Dir = runDir
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := lastLine(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("go run %s (in %s): %s", pkg, runDir, msg)
	}
	if stderr.Len() > 0 && r.stderr != nil {
		_, _ = r.stderr.Write(stderr.Bytes())
	}
	return stdout.Bytes(), nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" && !strings.HasPrefix(l, "exit status") {
			return l
		}
	}
	return ""
}

// parseObjects reads JSON objects, JSON arrays of objects, lists ({"kind":"ServiceList",
// "items":[...]}) or a sequence of them (newline-delimited JSON), each decoded strictly.
func parseObjects(source string, data []byte) ([]item, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var items []item
	n := 0
	var add func(raw json.RawMessage) error
	add = func(raw json.RawMessage) error {
		raw = bytes.TrimSpace(raw)
		switch {
		case len(raw) > 0 && raw[0] == '[':
			var elems []json.RawMessage
			if err := json.Unmarshal(raw, &elems); err != nil {
				return fmt.Errorf("%s: %w", source, err)
			}
			for _, e := range elems {
				if err := add(e); err != nil {
					return err
				}
			}
			return nil
		case len(raw) > 0 && raw[0] == '{':
		default:
			return fmt.Errorf("%s: object %d: expected a JSON object or array, got %.20s", source, n+1, raw)
		}
		n++
		var head struct {
			Kind     string          `json:"kind"`
			Items    json.RawMessage `json:"items"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		_ = json.Unmarshal(raw, &head)
		if base, ok := strings.CutSuffix(head.Kind, "List"); ok && base != "" && head.Items != nil {
			if _, known := v1.LookupKind(base); known {
				n--
				return add(head.Items)
			}
		}
		obj, err := v1.Decode(raw)
		if err != nil {
			err = withFieldPath(err, raw, head.Kind)
			where := fmt.Sprintf("object %d", n)
			if info, ok := v1.LookupKind(head.Kind); ok && head.Metadata.Name != "" {
				where = info.Plural + "/" + head.Metadata.Name
			}
			return fmt.Errorf("%s: %s: %w", source, where, err)
		}
		items = append(items, item{source: source, obj: obj})
		return nil
	}
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: malformed JSON after %d object(s): %v", source, n, strings.TrimPrefix(err.Error(), "json: "))
		}
		if err := add(raw); err != nil {
			return nil, err
		}
	}
	return items, nil
}

// prepare defaults and validates every object client-side; any invalid object fails the whole
// input, so that nothing is sent.
func prepare(items []item) error {
	var errs []string
	for _, it := range items {
		it.obj.Default()
		info, _ := v1.LookupKind(it.obj.GetTypeMeta().Kind)
		if err := it.obj.Validate().ToAggregate(info.Plural, it.obj.GetMetadata().Name); err != nil {
			errs = append(errs, err.Error())
		}
	}
	errs = append(errs, dependsOnCycles(items)...)
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errors.New(errs[0])
	}
	return fmt.Errorf("%s (and %d more invalid objects; nothing was applied)", errs[0], len(errs)-1)
}
