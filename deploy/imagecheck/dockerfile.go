package imagecheck

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// FinalBase is the only image a final stage may start from: distroless
// static (no libc, no shell, no package manager) in its nonroot flavour.
const FinalBase = "gcr.io/distroless/static-debian12:nonroot"

// digestRef is name[:tag]@sha256:<64 hex>: a tag alone can be moved by
// whoever controls the registry, a digest names exactly one image.
var digestRef = regexp.MustCompile(`^([a-z0-9][a-z0-9._/-]*(?::[0-9]+)?/)?[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_.-]+)?@sha256:[0-9a-f]{64}$`)

// Image is what a Dockerfile builds, as far as the checks need it.
type Image struct {
	// BuildStage is the name of the stage the final stage copies from.
	BuildStage string
	// FinalFrom is the final stage's base reference, digest included.
	FinalFrom string
	// GoEnv are the environment assignments the go build runs with
	// (inline on the RUN line or from ENV), e.g. CGO_ENABLED=0,
	// GOTOOLCHAIN=go1.26.10.
	GoEnv []string
	// GoFlags are the go build arguments between "build" and the package,
	// -o and its value removed, with ARG defaults expanded.
	GoFlags []string
	// Output is the -o path inside the build stage.
	Output string
	// Package is the package path built, e.g. ./processor/cmd/crowsnest-processor.
	Package string
	// Copied are the build-context sources the build stage COPYs, cleaned
	// and without trailing slashes ("bus", "go.work", "bus/go.mod").
	Copied []string
	// Binary is where the final stage puts the built binary.
	Binary string
	// User is the final USER, "uid:gid".
	User string
	// Entrypoint is the final stage's ENTRYPOINT in exec form.
	Entrypoint []string
}

// Lint parses a Dockerfile with BuildKit's own parser and reports every way
// it departs from the house image rules, joined: multi-stage; every FROM
// pinned by digest; the final stage on distroless static nonroot with only
// COPY --from=<build stage> of what the build stage produced; exec-form
// ENTRYPOINT/CMD (there is no shell); a numeric non-root USER; no ADD of a
// URL anywhere; exactly one static go build (CGO_ENABLED=0, -trimpath, a
// pinned GOTOOLCHAIN) whose
// -o is the binary the final stage copies and runs. name labels the errors.
func Lint(name string, src []byte) (*Image, error) {
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return nil, fmt.Errorf("%s: parse: %w", name, err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: instructions: %w", name, err)
	}
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
	}
	if len(metaArgs) > 0 {
		// An ARG before FROM can swap a base image at build time,
		// around the digest pin.
		fail("ARG before the first FROM (base images must be fixed, not build arguments)")
	}
	if len(stages) < 2 {
		fail("%d stage(s): want a build stage and a final stage", len(stages))
		return nil, errors.Join(errs...)
	}
	names := map[string]int{}
	for i, st := range stages {
		if st.Name != "" {
			names[strings.ToLower(st.Name)] = i
		}
		if _, earlier := names[strings.ToLower(st.BaseName)]; earlier && names[strings.ToLower(st.BaseName)] < i {
			continue
		}
		if !digestRef.MatchString(st.BaseName) {
			fail("stage %d FROM %q: not pinned by digest (want name:tag@sha256:<64 hex>)", i, st.BaseName)
		}
		if st.Platform != "" {
			fail("stage %d FROM --platform=%s: the digest of a multi-arch index already selects per platform", i, st.Platform)
		}
		for _, c := range st.Commands {
			if add, ok := c.(*instructions.AddCommand); ok {
				for _, s := range add.SourcePaths {
					if isRemote(s) {
						fail("stage %d: ADD %s fetches from the network, unpinned and unverified; download in a RUN with a checksum or COPY from the context", i, s)
					}
				}
			}
		}
	}

	img := &Image{}
	final := stages[len(stages)-1]
	img.FinalFrom = final.BaseName
	if base, _, _ := strings.Cut(final.BaseName, "@"); base != FinalBase {
		fail("final stage FROM %q: want %s@sha256:...", final.BaseName, FinalBase)
	}
	lintFinal(&final, names, img, fail)
	if img.BuildStage == "" {
		fail("final stage copies nothing from a build stage")
		return nil, errors.Join(errs...)
	}
	build := stages[names[img.BuildStage]]
	lintBuild(&build, img, fail)
	if img.Output != "" && img.Binary != "" && !slices.Contains(finalSources(&final), img.Output) {
		fail("final stage does not copy the go build output %s", img.Output)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return img, nil
}

// lintFinal checks the final stage and fills BuildStage, Binary, User and
// Entrypoint.
func lintFinal(st *instructions.Stage, names map[string]int, img *Image, fail func(string, ...any)) {
	for _, c := range st.Commands {
		switch c := c.(type) {
		case *instructions.CopyCommand:
			if c.From == "" {
				fail("final stage COPY %v without --from: only build outputs belong in the image", c.SourcePaths)
				continue
			}
			if _, ok := names[strings.ToLower(c.From)]; !ok {
				fail("final stage COPY --from=%s: not a stage of this file (an image by name would be unpinned)", c.From)
				continue
			}
			if img.BuildStage != "" && !strings.EqualFold(img.BuildStage, c.From) {
				fail("final stage copies from %s and %s: want one build stage", img.BuildStage, c.From)
			}
			img.BuildStage = strings.ToLower(c.From)
		case *instructions.UserCommand:
			img.User = c.User
		case *instructions.EntrypointCommand:
			if c.PrependShell {
				fail("final stage ENTRYPOINT in shell form: there is no shell, use the exec form [\"...\"]")
			}
			img.Entrypoint = c.CmdLine
		case *instructions.CmdCommand:
			if c.PrependShell {
				fail("final stage CMD in shell form: there is no shell, use the exec form [\"...\"]")
			}
		case *instructions.LabelCommand, *instructions.ExposeCommand, *instructions.VolumeCommand,
			*instructions.EnvCommand, *instructions.StopSignalCommand:
		default:
			fail("final stage %s: only COPY --from, USER, ENTRYPOINT, CMD, ENV, LABEL, EXPOSE, VOLUME and STOPSIGNAL belong there", strings.ToUpper(c.Name()))
		}
	}
	if err := nonRootUser(img.User); err != nil {
		fail("final stage USER: %v", err)
	}
	if len(img.Entrypoint) == 0 {
		fail("final stage has no ENTRYPOINT")
	}
	for _, c := range st.Commands {
		if cp, ok := c.(*instructions.CopyCommand); ok && len(img.Entrypoint) > 0 && cp.DestPath == img.Entrypoint[0] && len(cp.SourcePaths) == 1 {
			img.Binary = cp.DestPath
		}
	}
	if len(img.Entrypoint) > 0 && img.Binary == "" {
		fail("ENTRYPOINT %s is not a file the final stage copies from the build stage", img.Entrypoint[0])
	}
}

// finalSources are the paths the final stage copies out of the build stage.
func finalSources(st *instructions.Stage) []string {
	var out []string
	for _, c := range st.Commands {
		if cp, ok := c.(*instructions.CopyCommand); ok {
			out = append(out, cp.SourcePaths...)
		}
	}
	return out
}

// nonRootUser accepts "uid:gid" with both numeric and non-zero: a name
// needs /etc/passwd to resolve and Kubernetes' runAsNonRoot cannot verify it.
func nonRootUser(u string) error {
	if u == "" {
		return errors.New("missing (the image would run as root)")
	}
	uid, gid, ok := strings.Cut(u, ":")
	if !ok {
		return fmt.Errorf("%q: want numeric uid:gid", u)
	}
	for _, id := range []string{uid, gid} {
		n, err := strconv.ParseUint(id, 10, 32)
		if err != nil {
			return fmt.Errorf("%q: %q is not a numeric id", u, id)
		}
		if n == 0 {
			return fmt.Errorf("%q: id 0 is root", u)
		}
	}
	return nil
}

// lintBuild checks the build stage: exactly one RUN with a go build, static
// and trimmed, and fills Output, Package, GoEnv, GoFlags and Copied.
func lintBuild(st *instructions.Stage, img *Image, fail func(string, ...any)) {
	env := map[string]string{}
	var builds int
	for _, c := range st.Commands {
		switch c := c.(type) {
		case *instructions.ArgCommand:
			for _, kv := range c.Args {
				if kv.Value != nil {
					env[kv.Key] = *kv.Value
				} else {
					env[kv.Key] = ""
				}
			}
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				env[kv.Key] = kv.Value
				img.GoEnv = append(img.GoEnv, kv.Key+"="+kv.Value)
			}
		case *instructions.CopyCommand:
			if c.From != "" {
				continue
			}
			for _, s := range c.SourcePaths {
				img.Copied = append(img.Copied, path.Clean(s))
			}
		case *instructions.RunCommand:
			if !c.PrependShell || len(c.CmdLine) != 1 {
				continue
			}
			words, err := shell.NewLex('\\').ProcessWords(c.CmdLine[0], shell.EnvsFromSlice(envSlice(env)))
			if err != nil {
				fail("build stage RUN: %v", err)
				continue
			}
			if !isGoBuild(words) {
				continue
			}
			builds++
			parseGoBuild(words, img, fail)
		}
	}
	if builds != 1 {
		fail("build stage %s has %d go build commands: want exactly one", st.Name, builds)
		return
	}
	if !slices.Contains(img.GoEnv, "CGO_ENABLED=0") {
		fail("go build without CGO_ENABLED=0: the binary would link libc, which distroless static lacks")
	}
	if tc := envValue(img.GoEnv, "GOTOOLCHAIN"); !pinnedToolchain.MatchString(tc) {
		fail("go build with GOTOOLCHAIN=%q: pin a Go release (goX.Y.Z); the base image's own Go moves with its tag and misses security releases", tc)
	}
	if !slices.Contains(img.GoFlags, "-trimpath") {
		fail("go build without -trimpath: build paths would leak into the binary and break reproducibility")
	}
}

// isGoBuild reports whether a RUN's words, after VAR=value assignments, are
// "go build ...".
func isGoBuild(words []string) bool {
	i := 0
	for i < len(words) && isAssignment(words[i]) {
		i++
	}
	return len(words) > i+1 && words[i] == "go" && words[i+1] == "build"
}

func isAssignment(w string) bool {
	k, _, ok := strings.Cut(w, "=")
	return ok && k != "" && !strings.HasPrefix(k, "-")
}

func parseGoBuild(words []string, img *Image, fail func(string, ...any)) {
	i := 0
	for ; isAssignment(words[i]); i++ {
		img.GoEnv = append(img.GoEnv, words[i])
	}
	args := words[i+2:]
	for j := 0; j < len(args); j++ {
		a := args[j]
		switch {
		case a == "&&" || a == ";" || a == "|" || a == "||":
			fail("go build RUN chains another command (%s ...): keep the build step one command", a)
			return
		case a == "-o":
			if j+1 == len(args) {
				fail("go build -o without a path")
				return
			}
			img.Output = args[j+1]
			j++
		case strings.HasPrefix(a, "-o="):
			img.Output = strings.TrimPrefix(a, "-o=")
		case strings.HasPrefix(a, "-"):
			img.GoFlags = append(img.GoFlags, a)
			if takesValue(a) {
				if j+1 == len(args) {
					fail("go build %s without a value", a)
					return
				}
				img.GoFlags = append(img.GoFlags, args[j+1])
				j++
			}
		default:
			if img.Package != "" {
				fail("go build of more than one package (%s, %s): one binary per image", img.Package, a)
			}
			img.Package = a
		}
	}
	if img.Output == "" {
		fail("go build without -o: the output path must be explicit for the final stage to copy it")
	}
	if !strings.HasPrefix(img.Package, "./") {
		fail("go build package %q: want a path inside the context (./...)", img.Package)
	}
}

// takesValue reports whether a go build flag given without "=" consumes the
// next word.
func takesValue(flag string) bool {
	if strings.Contains(flag, "=") {
		return false
	}
	switch strings.TrimLeft(flag, "-") {
	case "ldflags", "gcflags", "asmflags", "tags", "mod", "modfile", "pgo", "p", "buildmode", "overlay", "pkgdir", "installsuffix", "compiler", "gccgoflags", "toolexec":
		return true
	}
	return false
}

// pinnedToolchain is an exact Go release: GOTOOLCHAIN=go1.26.10.
var pinnedToolchain = regexp.MustCompile(`^go1\.[0-9]+\.[0-9]+$`)

// envValue returns the last value assigned to key in KEY=value pairs.
func envValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// Toolchain is the Go release the image's go build runs with.
func (img *Image) Toolchain() string { return envValue(img.GoEnv, "GOTOOLCHAIN") }

func envSlice(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

func isRemote(src string) bool {
	return strings.Contains(src, "://") || strings.HasPrefix(src, "git@")
}
