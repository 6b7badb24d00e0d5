package imagecheck

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// nonroot is distroless nonroot's uid and gid, the Dockerfiles' USER.
const nonroot = 65532

// TestBinaries builds exactly what each Dockerfile's go build builds (its
// package, environment and flags, read from the file, not restated here),
// checks the result is a static ELF (no interpreter, no shared libraries:
// distroless static has no libc to load) and runs it as uid/gid 65532 with
// a read-only view of nothing but itself, as the image would. There is no
// image builder on CI machines; this is the part of the build that matters
// for what runs.
func TestBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds four binaries")
	}
	// Not t.TempDir(): its parent is 0700, and uid 65532 must reach the
	// binaries through every directory on the path.
	dir, err := os.MkdirTemp("", "imagecheck-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, im := range images {
		t.Run(im.file, func(t *testing.T) {
			img, err := Lint(im.file, readDockerfile(t, im.file))
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, filepath.Base(img.Output))
			args := append([]string{"build"}, img.GoFlags...)
			args = append(args, "-o", out, img.Package)
			cmd := exec.Command("go", args...)
			cmd.Dir = repoRoot
			cmd.Env = append(os.Environ(), img.GoEnv...)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go %s (env %v): %v\n%s", strings.Join(args, " "), img.GoEnv, err, b)
			}
			if err := staticErr(out); err != nil {
				t.Error(err)
			}
			runAsNonRoot(t, out, im.run)
		})
	}
}

// staticErr reports why the ELF file at path would not run on distroless
// static: a program interpreter or a needed shared library.
func staticErr(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var errs []error
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			errs = append(errs, fmt.Errorf("%s has a PT_INTERP program header: dynamically linked", path))
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return err
	}
	if len(libs) > 0 {
		errs = append(errs, fmt.Errorf("%s needs shared libraries %v (DT_NEEDED)", path, libs))
	}
	return errors.Join(errs...)
}

// A dynamically linked system binary must fail staticErr, or the check
// above proves nothing.
func TestStaticErrRejectsDynamic(t *testing.T) {
	for _, p := range []string{"/bin/ls", "/usr/bin/env"} {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		err := staticErr(p)
		if err == nil || !strings.Contains(err.Error(), "PT_INTERP") || !strings.Contains(err.Error(), "DT_NEEDED") {
			t.Fatalf("staticErr(%s) = %v, want PT_INTERP and DT_NEEDED", p, err)
		}
		return
	}
	t.Skip("no dynamically linked /bin/ls or /usr/bin/env here")
}

func runAsNonRoot(t *testing.T, path string, args []string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("not root (euid %d): cannot switch to uid %d to run %s; the build and static checks passed", os.Geteuid(), nonroot, filepath.Base(path))
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(path, args...)
	// An empty environment and / as the working directory: the image sets
	// nothing else, and nothing from the test's own environment may help.
	cmd.Env = []string{}
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nonroot, Gid: nonroot}}
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v as %d:%d: %v\nstdout: %s\nstderr: %s", path, args, nonroot, nonroot, err, stdout.String(), stderr.String())
	}
	output := stdout.String() + stderr.String()
	name := filepath.Base(path)
	if !strings.Contains(output, name) {
		t.Errorf("%s %v printed %q, which does not name %s", name, args, output, name)
	}
	if slices.Contains(args, "-h") && !strings.Contains(output, "-config") {
		t.Errorf("%s -h printed no usage: %q", name, output)
	}
}
