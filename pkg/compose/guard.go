package compose

import (
	"bytes"
	"fmt"
	"os"

	"go.yaml.in/yaml/v4"
)

// checkAnchors refuses a file with an alias inside the node its anchor names (`a: &x {b: *x}`):
// compose-go v2.16.2's reset processor recurses on such a file until the stack is exhausted,
// which no recover catches (found by FuzzConvert). It parses with the YAML library compose-go
// uses, so it sees the same anchors; a file that does not parse is left to compose-go's error.
// Files reached through include and extends are not checked.
func checkAnchors(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil // compose-go reports it, with its own wording
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			return nil // io.EOF, or a syntax error compose-go reports better
		}
		if n := selfAlias(&doc, map[*yaml.Node]bool{}); n != nil {
			return fmt.Errorf("compose: %s: line %d: alias *%s is inside the node its anchor &%s names (a cycle)",
				file, n.Line, n.Value, n.Value)
		}
	}
}

// selfAlias returns an alias node whose target is one of its ancestors.
func selfAlias(n *yaml.Node, ancestors map[*yaml.Node]bool) *yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.AliasNode {
		if ancestors[n.Alias] {
			return n
		}
		return nil
	}
	ancestors[n] = true
	defer delete(ancestors, n)
	for _, c := range n.Content {
		if a := selfAlias(c, ancestors); a != nil {
			return a
		}
	}
	return nil
}
