package imagecheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// repoRoot is the workspace root, the Dockerfiles' build context.
const repoRoot = "../.."

// images are the Dockerfiles under deploy/docker and what each must build.
// A Dockerfile added without a row here fails TestEveryDockerfileListed.
var images = []struct {
	file, pkg, binary string
	run               []string // arguments that make the binary print and exit 0
}{
	{"Dockerfile.collector", "./collectors/cmd/crowsnest-collector", "/crowsnest-collector", []string{"-h"}},
	{"Dockerfile.processor", "./processor/cmd/crowsnest-processor", "/crowsnest-processor", []string{"-h"}},
	{"Dockerfile.sink", "./sinks/cmd/crowsnest-sink", "/crowsnest-sink", []string{"-h"}},
	{"Dockerfile.crowsnest", "./cli", "/crowsnest", []string{"version"}},
}

func readDockerfile(t testing.TB, name string) []byte {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "docker", name))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestEveryDockerfileListed(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(repoRoot, "deploy", "docker", "Dockerfile*"))
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for _, f := range files {
		got = append(got, filepath.Base(f))
	}
	for _, im := range images {
		want = append(want, im.file)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("deploy/docker holds %v, the test knows %v", got, want)
	}
}

// TestRepositoryDockerfiles lints each Dockerfile and checks that its build
// stage copies everything the go command needs for that package in a clean
// context: go.work, every workspace module's go.mod/go.sum, and the whole
// directory of each workspace module the package imports (go list -deps).
func TestRepositoryDockerfiles(t *testing.T) {
	goWork, err := os.ReadFile(filepath.Join(repoRoot, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	workspace, err := WorkspaceModules(goWork)
	if err != nil {
		t.Fatal(err)
	}
	for _, im := range images {
		t.Run(im.file, func(t *testing.T) {
			img, err := Lint(im.file, readDockerfile(t, im.file))
			if err != nil {
				t.Fatal(err)
			}
			if img.Package != im.pkg || img.Binary != im.binary || img.Entrypoint[0] != im.binary {
				t.Errorf("builds %s into %s, entrypoint %v; want %s into %s", img.Package, img.Binary, img.Entrypoint, im.pkg, im.binary)
			}
			if img.User != "65532:65532" {
				t.Errorf("USER %s, want 65532:65532 (distroless nonroot, the chart's runAsUser)", img.User)
			}
			for _, c := range img.Copied {
				if _, err := os.Stat(filepath.Join(repoRoot, c)); err != nil {
					t.Errorf("COPY source %s: %v", c, err)
				}
			}
			deps := moduleDirs(t, im.pkg)
			if missing := CheckSources(img, workspace, deps); len(missing) > 0 {
				t.Errorf("build stage does not copy %v (workspace %v, package modules %v)", missing, workspace, deps)
			}
		})
	}
}

// Every image builds with the same Go release, the one scripts/govulncheck.sh
// scans with (it reads it from Dockerfile.processor).
func TestOneToolchain(t *testing.T) {
	want := ""
	for _, im := range images {
		img, err := Lint(im.file, readDockerfile(t, im.file))
		if err != nil {
			t.Fatal(err)
		}
		if want == "" {
			want = img.Toolchain()
		}
		if img.Toolchain() != want {
			t.Errorf("%s builds with %s, %s with %s", im.file, img.Toolchain(), images[0].file, want)
		}
	}
}

// moduleDirs lists the workspace module directories pkg depends on.
func moduleDirs(t *testing.T, pkg string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{if .Main}}{{.Dir}}{{end}}{{end}}", pkg)
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, line := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, line)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(dirs, filepath.ToSlash(rel)) {
			dirs = append(dirs, filepath.ToSlash(rel))
		}
	}
	if len(dirs) == 0 {
		t.Fatalf("go list -deps %s named no workspace module", pkg)
	}
	return dirs
}

// TestLintRejects breaks the collector's Dockerfile one rule at a time; each
// must fail Lint with an error that names the rule.
func TestLintRejects(t *testing.T) {
	good := string(readDockerfile(t, "Dockerfile.collector"))
	const (
		golangFrom = "FROM golang:1.26-bookworm@sha256:18aedc16aa19b3fd7ded7245fc14b109e054d65d22ed53c355c899582bbb2113 AS build"
		finalFrom  = "FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab"
		copyBin    = "COPY --from=build /out/crowsnest-collector /crowsnest-collector"
		goBuild    = "CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath"
	)
	for _, s := range []string{golangFrom, finalFrom, copyBin, goBuild, "USER 65532:65532", `ENTRYPOINT ["/crowsnest-collector"]`} {
		if !strings.Contains(good, s) {
			t.Fatalf("Dockerfile.collector no longer contains %q: update the test", s)
		}
	}
	tests := []struct {
		name, old, new, want string
	}{
		{"single stage", good[:strings.Index(good, finalFrom)], "", "1 stage(s)"},
		{"build base by tag", golangFrom, "FROM golang:1.26-bookworm AS build", "not pinned by digest"},
		{"final base by tag", finalFrom, "FROM gcr.io/distroless/static-debian12:nonroot", "not pinned by digest"},
		{"final base with a shell", finalFrom, "FROM debian:bookworm-slim@sha256:" + strings.Repeat("a", 64), "want gcr.io/distroless/static-debian12:nonroot"},
		{"final base not nonroot", finalFrom, "FROM gcr.io/distroless/static-debian12@sha256:" + strings.Repeat("b", 64), "want gcr.io/distroless/static-debian12:nonroot"},
		{"base from a build argument", golangFrom, "ARG GO=golang:1.26\n" + golangFrom, "ARG before the first FROM"},
		{"platform forced", finalFrom, strings.Replace(finalFrom, "FROM ", "FROM --platform=linux/amd64 ", 1), "--platform"},
		{"no USER", "USER 65532:65532\n", "", "USER: missing"},
		{"USER root", "USER 65532:65532", "USER 0:0", "id 0 is root"},
		{"USER by name", "USER 65532:65532", "USER nonroot:nonroot", "not a numeric id"},
		{"USER without group", "USER 65532:65532", "USER 65532", "want numeric uid:gid"},
		{"shell-form entrypoint", `ENTRYPOINT ["/crowsnest-collector"]`, "ENTRYPOINT /crowsnest-collector", "shell form"},
		{"shell-form cmd", `ENTRYPOINT ["/crowsnest-collector"]`, "ENTRYPOINT [\"/crowsnest-collector\"]\nCMD -config /etc/c.yaml", "shell form"},
		{"RUN in final stage", "USER 65532:65532", "RUN [\"/crowsnest-collector\", \"-h\"]\nUSER 65532:65532", "final stage RUN"},
		{"COPY from the context into final", copyBin, copyBin + "\nCOPY deploy/ /deploy/", "without --from"},
		{"COPY from an image", copyBin, copyBin + "\nCOPY --from=busybox:1.36 /bin/sh /bin/sh", "not a stage of this file"},
		{"ADD of a URL", "WORKDIR /src", "WORKDIR /src\nADD https://example.com/tool.tar.gz /tmp/", "fetches from the network"},
		{"ADD in final", copyBin, copyBin + "\nADD deploy/ /deploy/", "final stage ADD"},
		{"cgo on", goBuild, "CGO_ENABLED=1 GOFLAGS=-buildvcs=false go build -trimpath", "CGO_ENABLED=0"},
		{"cgo default", goBuild, "GOFLAGS=-buildvcs=false go build -trimpath", "CGO_ENABLED=0"},
		{"toolchain unpinned", "ENV GOTOOLCHAIN=go1.26.10", "ENV GOTOOLCHAIN=auto", "GOTOOLCHAIN"},
		{"toolchain minor only", "ENV GOTOOLCHAIN=go1.26.10", "ENV GOTOOLCHAIN=go1.26", "GOTOOLCHAIN"},
		{"toolchain from the base image", "ENV GOTOOLCHAIN=go1.26.10\n", "", "GOTOOLCHAIN"},
		{"no trimpath", goBuild, "CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build", "-trimpath"},
		{"binary not copied", copyBin, "COPY --from=build /out/other /crowsnest-collector", "does not copy the go build output"},
		{"entrypoint not the binary", `ENTRYPOINT ["/crowsnest-collector"]`, `ENTRYPOINT ["/bin/sh"]`, "is not a file the final stage copies"},
		{"no go build", goBuild + ` -ldflags="-s -w -X main.version=${VERSION}"`, "CGO_ENABLED=0 go vet", "0 go build commands"},
		{"chained command", "./collectors/cmd/crowsnest-collector\n", "./collectors/cmd/crowsnest-collector && rm -rf /src\n", "chains another command"},
		{"two packages", "./collectors/cmd/crowsnest-collector\n", "./collectors/cmd/crowsnest-collector ./cli\n", "more than one package"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := strings.Replace(good, tt.old, tt.new, 1)
			if bad == good {
				t.Fatalf("replacing %q changed nothing", tt.old)
			}
			_, err := Lint("Dockerfile.bad", []byte(bad))
			if err == nil {
				t.Fatalf("Lint accepted:\n%s", bad)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestCheckSourcesReportsMissing(t *testing.T) {
	img := &Image{Copied: []string{"go.work", "bus/go.mod", "bus/go.sum", "bus", "cli/go.mod"}}
	got := CheckSources(img, []string{"bus", "cli"}, []string{"bus", "daemon"})
	want := []string{"go.work.sum", "cli/go.sum", "daemon/"}
	if !slices.Equal(got, want) {
		t.Fatalf("missing %v, want %v", got, want)
	}
	img.Copied = []string{"."}
	if got := CheckSources(img, []string{"bus"}, nil); len(got) != 0 {
		t.Fatalf("COPY . . copies everything, got missing %v", got)
	}
}

func FuzzLint(f *testing.F) {
	for _, im := range images {
		src, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "docker", im.file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add([]byte("FROM scratch\n"))
	f.Add([]byte("FROM a AS b\nRUN go build -o\nFROM b\nCOPY --from=b x y\nUSER 1:\nENTRYPOINT []\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		img, err := Lint("fuzz", src)
		if err == nil && (img == nil || img.Binary == "" || img.Output == "" || nonRootUser(img.User) != nil) {
			t.Fatalf("accepted without a binary, output or non-root user: %+v", img)
		}
	})
}
