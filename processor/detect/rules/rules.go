package rules

import (
	"embed"
	"io/fs"
)

//go:embed builtin/*.yml
var builtin embed.FS

// Builtin returns the built-in rules: one Sigma rule per .yml file.
func Builtin() fs.FS {
	sub, err := fs.Sub(builtin, "builtin")
	if err != nil {
		return builtin // cannot happen: the directory is embedded; a walk still finds the rules
	}
	return sub
}
