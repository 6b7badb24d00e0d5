package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// StoreProc is a store server of a scenario's own (Elasticsearch, the
// ClickHouse engine), on its own loopback port and data directory, so a
// scenario can stop and restart it without touching the shared development
// services. Unlike Proc it signals the whole process group: Elasticsearch's
// launcher starts the server as a child process, and a stop must reach both.
type StoreProc struct {
	Name string
	URL  string // http://127.0.0.1:<port>

	env     *Env
	path    string
	args    []string
	envv    []string
	dir     string
	cred    *syscall.Credential
	healthy func(ctx context.Context) error
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StoreSetup says where a scenario's own stores come from. The fields are
// read from the environment by StoreSetupFromEnv; an empty field means that
// store cannot be started here.
type StoreSetup struct {
	// ESHome is an unpacked Elasticsearch distribution (bin/elasticsearch).
	ESHome string
	// ESJavaHome is the JDK it runs on (empty: JAVA_HOME or the first JDK
	// >= 17 under /usr/lib/jvm).
	ESJavaHome string
	// ESUser runs Elasticsearch when the test runs as root (it refuses
	// root).
	ESUser string
	// ESHeap is -Xms/-Xmx.
	ESHeap string
	// CHPython is the Python with chdb installed, CHServer the ClickHouse
	// engine's HTTP server script (deploy/dev/chdb-server).
	CHPython, CHServer string
}

// Environment variables naming the stores a scenario may start itself.
const (
	EnvESHome     = "CROWSNEST_CHAOS_ES_HOME"
	EnvESJavaHome = "CROWSNEST_CHAOS_ES_JAVA_HOME"
	EnvESUser     = "CROWSNEST_CHAOS_ES_USER"
	EnvCHPython   = "CROWSNEST_CHAOS_CH_PYTHON"
	EnvCHServer   = "CROWSNEST_CHAOS_CH_SERVER"
)

// StoreSetupFromEnv reads the StoreSetup from the environment; CHServer
// defaults to deploy/dev/chdb-server/chdb_http_server.py under src (the
// source tree).
func StoreSetupFromEnv(src string) StoreSetup {
	s := StoreSetup{
		ESHome:     os.Getenv(EnvESHome),
		ESJavaHome: os.Getenv(EnvESJavaHome),
		ESUser:     os.Getenv(EnvESUser),
		ESHeap:     "384m",
		CHPython:   os.Getenv(EnvCHPython),
		CHServer:   os.Getenv(EnvCHServer),
	}
	if s.ESUser == "" {
		s.ESUser = "crowsnest-es"
	}
	if s.CHServer == "" && src != "" {
		s.CHServer = filepath.Join(src, "deploy", "dev", "chdb-server", "chdb_http_server.py")
	}
	return s
}

// Missing says what is missing to start both stores, or "" when nothing is.
func (s StoreSetup) Missing() string {
	var out []string
	if s.ESHome == "" {
		out = append(out, EnvESHome+" (an unpacked Elasticsearch, e.g. .services/elasticsearch/dist/elasticsearch-<version> after make services-up)")
	} else if _, err := os.Stat(filepath.Join(s.ESHome, "bin", "elasticsearch")); err != nil {
		out = append(out, EnvESHome+": "+err.Error())
	}
	if s.CHPython == "" {
		out = append(out, EnvCHPython+" (the Python with chdb, e.g. deploy/dev/.venv/bin/python after make services-up)")
	} else if _, err := os.Stat(s.CHPython); err != nil {
		out = append(out, EnvCHPython+": "+err.Error())
	}
	if _, err := os.Stat(s.CHServer); err != nil {
		out = append(out, EnvCHServer+": "+err.Error())
	}
	return strings.Join(out, "; ")
}

// StartElasticsearch starts a single-node Elasticsearch of the scenario's
// own: loopback, security off, its data, config and logs in a directory of
// its own (readable by ESUser), and waits until its cluster is green or
// yellow.
func (e *Env) StartElasticsearch(name string, s StoreSetup) *StoreProc {
	e.t.Helper()
	javaHome, err := findJavaHome(s.ESJavaHome)
	if err != nil {
		e.t.Fatalf("%s: %v", name, err)
	}
	// Outside the scenario directory, which only root may enter.
	root, err := os.MkdirTemp("", "crowsnest-chaos-es-")
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = os.RemoveAll(root) })
	conf := filepath.Join(root, "config")
	for _, d := range []string{conf, filepath.Join(conf, "jvm.options.d"), filepath.Join(root, "data"), filepath.Join(root, "logs"), filepath.Join(root, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			e.t.Fatal(err)
		}
	}
	for _, f := range []string{"jvm.options", "log4j2.properties"} {
		b, err := os.ReadFile(filepath.Join(s.ESHome, "config", f))
		if err != nil {
			e.t.Fatalf("%s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(conf, f), b, 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	port := e.Ports(2)
	yml := fmt.Sprintf(`cluster.name: crowsnest-chaos
node.name: %s
path.data: %s
path.logs: %s
network.host: 127.0.0.1
http.port: %d
transport.port: %d
discovery.type: single-node
xpack.security.enabled: false
cluster.routing.allocation.disk.threshold_enabled: false
action.destructive_requires_name: false
`, name, filepath.Join(root, "data"), filepath.Join(root, "logs"), port[0], port[1])
	if err := os.WriteFile(filepath.Join(conf, "elasticsearch.yml"), []byte(yml), 0o644); err != nil {
		e.t.Fatal(err)
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup(s.ESUser)
		if err != nil {
			e.t.Fatalf("%s: Elasticsearch refuses to run as root and there is no user %q to run it (%s): %v", name, s.ESUser, EnvESUser, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := chownTree(root, uid, gid); err != nil {
			e.t.Fatal(err)
		}
		if err := os.Chmod(root, 0o755); err != nil {
			e.t.Fatal(err)
		}
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port[0])
	sp := &StoreProc{
		Name: name, URL: url, env: e,
		path: filepath.Join(s.ESHome, "bin", "elasticsearch"),
		envv: []string{
			"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "HOME=" + filepath.Join(root, "tmp"),
			"ES_JAVA_HOME=" + javaHome, "ES_PATH_CONF=" + conf, "ES_TMPDIR=" + filepath.Join(root, "tmp"),
			"ES_JAVA_OPTS=-Xms" + s.ESHeap + " -Xmx" + s.ESHeap,
		},
		dir: root, cred: cred,
		healthy: func(ctx context.Context) error {
			b, err := httpGet(ctx, url+"/_cluster/health")
			if err != nil {
				return err
			}
			if !strings.Contains(b, `"status":"green"`) && !strings.Contains(b, `"status":"yellow"`) {
				return fmt.Errorf("cluster health %s", b)
			}
			return nil
		},
	}
	sp.start()
	return sp
}

// StartClickHouseEngine starts the ClickHouse engine's HTTP server
// (deploy/dev/chdb-server) of the scenario's own, with its data under the
// scenario directory, and waits until /ping answers.
func (e *Env) StartClickHouseEngine(name string, s StoreSetup) *StoreProc {
	e.t.Helper()
	port := e.Ports(1)[0]
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	sp := &StoreProc{
		Name: name, URL: url, env: e,
		path: s.CHPython,
		args: []string{s.CHServer, "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--data-dir", e.Path(name, "data")},
		envv: append(os.Environ(), "PYTHONPYCACHEPREFIX="+e.Path(name, "pycache")),
		dir:  e.Path(name),
		healthy: func(ctx context.Context) error {
			b, err := httpGet(ctx, url+"/ping")
			if err != nil {
				return err
			}
			if strings.TrimSpace(b) != "Ok." {
				return fmt.Errorf("/ping answered %q", b)
			}
			return nil
		},
	}
	if err := os.MkdirAll(e.Path(name, "data"), 0o750); err != nil {
		e.t.Fatal(err)
	}
	sp.start()
	return sp
}

// storeStartTimeout bounds a store's start: Elasticsearch takes tens of
// seconds on this shared machine.
const storeStartTimeout = 4 * time.Minute

// start starts the process and waits until it is healthy; it fails the
// test otherwise.
func (s *StoreProc) start() {
	t := s.env.t
	t.Helper()
	s.logPath = s.env.Path("logs", s.Name+".log")
	s.env.mu.Lock()
	s.env.logs[s.logPath] = true
	s.env.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(s.logPath), 0o750); err != nil {
		t.Fatal(err)
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(logf, "=== %s start %s %q\n", time.Now().UTC().Format(time.RFC3339Nano), s.path, s.args)
	cmd := exec.Command(s.path, s.args...)
	cmd.Dir, cmd.Env = s.dir, s.envv
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: s.cred}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		t.Fatalf("start %s: %v", s.Name, err)
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(logf, "=== %s exit: %v\n", time.Now().UTC().Format(time.RFC3339Nano), err)
		_ = logf.Close()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	s.env.t.Cleanup(func() { _ = s.signal(syscall.SIGKILL, 0) })

	ctx, cancel := context.WithTimeout(context.Background(), storeStartTimeout)
	defer cancel()
	var last error
	for {
		if last = s.healthy(ctx); last == nil {
			t.Logf("%s up at %s in %s", s.Name, s.URL, time.Since(began).Round(100*time.Millisecond))
			return
		}
		select {
		case <-done:
			t.Fatalf("%s exited before it was healthy; see %s\n%s", s.Name, s.logPath, tail(s.logPath, logTailBytes))
		case <-ctx.Done():
			_ = s.signal(syscall.SIGKILL, 0)
			t.Fatalf("%s not healthy within %s: %v; see %s", s.Name, storeStartTimeout, last, s.logPath)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Stop sends SIGTERM to the store's process group and waits up to grace
// for it to exit, then kills it. It reports whether the exit was clean.
func (s *StoreProc) Stop(grace time.Duration) error {
	return s.signal(syscall.SIGTERM, grace)
}

// Kill sends SIGKILL to the store's process group: a crash.
func (s *StoreProc) Kill() error { return s.signal(syscall.SIGKILL, 0) }

// Restart starts the store again on the same port and data after a Stop or
// Kill, and waits until it is healthy.
func (s *StoreProc) Restart() {
	s.env.t.Helper()
	s.start()
}

func (s *StoreProc) signal(sig syscall.Signal, grace time.Duration) error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	pgid := cmd.Process.Pid // Setpgid: the group is the leader's pid
	if err := syscall.Kill(-pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %s: %w", s.Name, err)
	}
	if sig == syscall.SIGKILL {
		<-done
		return nil
	}
	select {
	case <-done:
		return nil
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("%s did not stop within %s after %s; killed", s.Name, grace, sig)
	}
}

func httpGet(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), nil
}

// findJavaHome returns want, else $JAVA_HOME, else the first JDK >= 17 under
// /usr/lib/jvm (Elasticsearch's launcher needs java; the dev setup's plugin
// was built with javac, not needed here).
func findJavaHome(want string) (string, error) {
	cands := []string{want, os.Getenv("JAVA_HOME")}
	if m, err := filepath.Glob("/usr/lib/jvm/*"); err == nil {
		cands = append(cands, m...)
	}
	for _, c := range cands {
		if c == "" {
			continue
		}
		if st, err := os.Stat(filepath.Join(c, "bin", "java")); err != nil || st.IsDir() {
			continue
		}
		out, err := exec.Command(filepath.Join(c, "bin", "java"), "-XshowSettings:properties", "-version").CombinedOutput()
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(out)) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "java.specification.version = "); ok {
				if major, err := strconv.Atoi(strings.SplitN(v, ".", 2)[0]); err == nil && major >= 17 {
					return c, nil
				}
			}
		}
	}
	return "", fmt.Errorf("no JDK >= 17 found: set %s", EnvESJavaHome)
}

func chownTree(root string, uid, gid int) error {
	return filepath.Walk(root, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
}
