// Command schemagen renders every file derived from schemas/fields.yml.
// Run it through `make generate` (or `go generate ./...` in schemas/).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/crowsnest-siem/crowsnest/schemas/internal/gen"
)

func main() {
	root := flag.String("root", "..", "repository root the output paths are relative to")
	registry := flag.String("registry", "fields.yml", "field registry to read")
	flag.Parse()
	if err := run(*root, *registry); err != nil {
		fmt.Fprintln(os.Stderr, "schemagen:", err)
		os.Exit(1)
	}
}

func run(root, registry string) error {
	data, err := os.ReadFile(registry)
	if err != nil {
		return fmt.Errorf("read registry: %w", err)
	}
	reg, err := gen.Parse(data)
	if err != nil {
		return fmt.Errorf("%s: %w", registry, err)
	}
	outs, err := gen.Outputs(reg)
	if err != nil {
		return err
	}
	for rel, content := range outs {
		path := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("create dir for %s: %w", rel, err)
		}
		if err := os.WriteFile(path, content, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", rel, err)
		}
	}
	return nil
}
