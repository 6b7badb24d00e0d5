package imagecheck

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"golang.org/x/mod/modfile"
)

// WorkspaceModules returns the module directories a go.work uses, cleaned
// and relative to the workspace root ("bus", "deploy/helm/chartcheck").
func WorkspaceModules(goWork []byte) ([]string, error) {
	wf, err := modfile.ParseWork("go.work", goWork, nil)
	if err != nil {
		return nil, fmt.Errorf("go.work: %w", err)
	}
	var dirs []string
	for _, u := range wf.Use {
		dirs = append(dirs, path.Clean(u.Path))
	}
	return dirs, nil
}

// CheckSources reports what the build stage fails to copy for its go build
// to work in a clean context: go.work and go.work.sum, the go.mod and go.sum
// of every workspace module (the go command loads them all, even those the
// binary does not import), and the whole directory of each module the
// built package depends on (deps, relative to the workspace root).
func CheckSources(img *Image, workspace, deps []string) []string {
	var missing []string
	want := func(p string) {
		if !copied(img.Copied, p) {
			missing = append(missing, p)
		}
	}
	want("go.work")
	want("go.work.sum")
	for _, m := range workspace {
		want(m + "/go.mod")
		want(m + "/go.sum")
	}
	for _, d := range deps {
		if !slices.Contains(img.Copied, d) {
			missing = append(missing, d+"/")
		}
	}
	return missing
}

// copied reports whether p itself or a directory holding it is copied.
func copied(sources []string, p string) bool {
	for _, s := range sources {
		if s == p || s == "." || strings.HasPrefix(p, s+"/") {
			return true
		}
	}
	return false
}
