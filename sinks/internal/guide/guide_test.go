package guide

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

const guidePath = "../../../docs/adding-a-sink.md"

// block is a marked code block: <!-- guide:file dir/name.go --> right
// before a ```go fence.
var block = regexp.MustCompile("(?s)<!-- guide:file ([^ ]+) -->\n```go\n(.*?)\n```")

// TestGuideCompilesAndPasses writes the guide's marked blocks into a
// package of the sinks module (a directory starting with "_", which ./...
// ignores, so a concurrent go test ./... never sees it), then vets it and
// runs its tests. It fails if the guide's code stops compiling or passing.
func TestGuideCompilesAndPasses(t *testing.T) {
	doc, err := os.ReadFile(guidePath)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, m := range block.FindAllStringSubmatch(string(doc), -1) {
		name := filepath.Clean(m[1])
		if filepath.IsAbs(name) || strings.HasPrefix(name, "..") || filepath.Ext(name) != ".go" {
			t.Fatalf("guide block %q: want a relative .go path", m[1])
		}
		if _, dup := files[name]; dup {
			t.Fatalf("guide block %q appears twice", name)
		}
		files[name] = m[2] + "\n"
	}
	var names []string
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	// The guide promises a whole sink: config, sink, factory and tests.
	for _, want := range []string{"dropdir/config.go", "dropdir/dropdir.go", "dropdir/factory.go", "dropdir/dropdir_test.go"} {
		if _, ok := files[want]; !ok {
			t.Fatalf("guide has no block for %s (found %v)", want, names)
		}
	}
	if !strings.Contains(files["dropdir/dropdir_test.go"], "sinktest.Run(") {
		t.Fatal("the guide's test does not run the conformance suite")
	}

	root, err := os.MkdirTemp(".", "_guide-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	for _, n := range names {
		path := filepath.Join(root, n)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(files[n]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the guide's code: %v", err)
	}
	pkg := "./" + filepath.ToSlash(filepath.Join(root, "dropdir"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for _, args := range [][]string{
		{"vet", pkg},
		{"test", "-count=1", pkg},
	} {
		cmd := exec.CommandContext(ctx, goTool, args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("go %s on the guide's code: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		t.Logf("go %s: %s", strings.Join(args, " "), strings.TrimSpace(out.String()))
	}
	// gofmt too: the guide's code is what people copy.
	gofmt := filepath.Join(filepath.Dir(goTool), "gofmt")
	if out, err := exec.CommandContext(ctx, gofmt, "-l", root).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("the guide's code is not gofmt-formatted: %s %v", out, err)
	}
}
