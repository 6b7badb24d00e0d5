package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Spec says how to start a process.
type Spec struct {
	Name string   // a label for logs and reports: "processor", "nats"
	Path string   // the program
	Args []string // its arguments
	Env  []string // added to the environment (KEY=value)
	Dir  string   // its working directory (created)
	// ReadyURL, when set, is polled by Start until it answers 200.
	ReadyURL string
}

// Proc is one running (or exited) process. Its stdout and stderr go to a log
// file that outlives it, appended across restarts of the same name.
type Proc struct {
	spec    Spec
	cmd     *exec.Cmd
	logPath string
	started time.Time

	done    chan struct{}
	mu      sync.Mutex
	waitErr error
}

// Start starts spec and, when spec.ReadyURL is set, waits until it is ready
// or ctx ends. logPath receives the output (appended).
func Start(ctx context.Context, spec Spec, logPath string) (*Proc, error) {
	if spec.Dir != "" {
		if err := os.MkdirAll(spec.Dir, 0o750); err != nil {
			return nil, fmt.Errorf("start %s: %w", spec.Name, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(logPath), 0o750); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	fmt.Fprintf(logf, "=== %s start %s %q\n", time.Now().UTC().Format(time.RFC3339Nano), spec.Path, spec.Args)
	// Not CommandContext: a process outlives the context that started it
	// and is ended only by Kill or Stop, which the test controls.
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Dir = spec.Dir
	cmd.Env = append(inheritedEnv(), spec.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so a signal meant for the test (Ctrl-C) does
	// not reach it twice, and a kill reaches only it.
	// Pdeathsig: when the test binary dies (a timeout, Ctrl-C) its
	// processes die with it instead of running on unowned.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	p := &Proc{spec: spec, cmd: cmd, logPath: logPath, started: time.Now(), done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(logf, "=== %s exit: %v\n", time.Now().UTC().Format(time.RFC3339Nano), err)
		_ = logf.Close()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(p.done)
	}()
	if spec.ReadyURL != "" {
		if err := p.WaitReady(ctx, spec.ReadyURL); err != nil {
			_ = p.Kill()
			return nil, err
		}
	}
	return p, nil
}

// Name is the spec's label.
func (p *Proc) Name() string { return p.spec.Name }

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// LogPath is where its output goes.
func (p *Proc) LogPath() string { return p.logPath }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and with what.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return true, p.waitErr
	default:
		return false, nil
	}
}

// WaitReady polls url until it answers 200, the process exits, or ctx ends.
func (p *Proc) WaitReady(ctx context.Context, url string) error {
	client := &http.Client{Timeout: time.Second}
	var last string
	for {
		resp, err := client.Get(url)
		if err == nil {
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(b.Bytes()))
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			_, werr := p.Exited()
			return fmt.Errorf("%s exited before it was ready (%v); see %s", p.spec.Name, werr, p.logPath)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s: %w (last answer: %s)", p.spec.Name, url, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Kill sends SIGKILL and waits for the process to be gone: a crash, with no
// chance to flush, ack or checkpoint anything.
func (p *Proc) Kill() error {
	if exited, _ := p.Exited(); exited {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", p.spec.Name, err)
	}
	<-p.done
	return nil
}

// Stop sends SIGTERM and waits up to grace for a clean exit, then kills.
// It returns the exit error of a process that did not exit cleanly.
func (p *Proc) Stop(grace time.Duration) error {
	if exited, err := p.Exited(); exited {
		return err
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop %s: %w", p.spec.Name, err)
	}
	select {
	case <-p.done:
		_, err := p.Exited()
		if err != nil {
			return fmt.Errorf("%s exited with %w; see %s", p.spec.Name, err, p.logPath)
		}
		return nil
	case <-time.After(grace):
		_ = p.Kill()
		return fmt.Errorf("%s did not stop within %s after SIGTERM; killed; see %s", p.spec.Name, grace, p.logPath)
	}
}

// Wait waits for the process to exit on its own (crowsnest run --for) or for
// ctx to end, and returns its exit error.
func (p *Proc) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		_, err := p.Exited()
		if err != nil {
			return fmt.Errorf("%s exited with %w; see %s", p.spec.Name, err, p.logPath)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for %s to exit: %w", p.spec.Name, ctx.Err())
	}
}

// inheritedEnv is the test's environment without its CROWSNEST_ settings
// (the suite's own switches among them), which crowsnest would refuse as
// unknown keys; a process gets only what its Spec sets. The development
// services' CROWSNEST_TEST_ and CROWSNEST_DEV_ variables pass.
func inheritedEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "CROWSNEST_") && !strings.HasPrefix(kv, "CROWSNEST_TEST_") && !strings.HasPrefix(kv, "CROWSNEST_DEV_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// FreePort returns a loopback TCP port nobody listens on right now. Another
// process may take it before it is used; tests on this machine run few
// enough listeners that a retry is not worth its code.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last n bytes of the file at path.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	off := max(st.Size()-n, 0)
	b := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil {
		return err.Error()
	}
	return string(b)
}
