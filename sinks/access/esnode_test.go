package access_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// EnvESHome names an unpacked Elasticsearch distribution (the development
// one: .services/elasticsearch/dist/elasticsearch-<version>) the test starts
// a secured node of its own from.
const EnvESHome = "CROWSNEST_TEST_ES_HOME"

// securedES is a single Elasticsearch node with security on: HTTP over TLS
// with a certificate the test's CA signed, a file-realm superuser, a trial
// license (document-level security needs one).
type securedES struct {
	URL                  string
	CAFile               string // the CA that signed the node's certificate
	WrongCAFile          string // a CA that signed nothing of it
	CAFingerprint        string
	Admin, AdminPassword string
	client               *http.Client
}

// startSecuredES starts the node and stops it when the test ends. It skips
// when EnvESHome is unset or no JDK with javac is found.
func startSecuredES(t *testing.T) *securedES {
	t.Helper()
	dist := os.Getenv(EnvESHome)
	if dist == "" {
		t.Skipf("%s is not set: no Elasticsearch distribution to start a secured node from (make services-up installs one; eval \"$(bash deploy/dev/services.sh env)\" sets it)", EnvESHome)
	}
	if _, err := os.Stat(filepath.Join(dist, "bin", "elasticsearch")); err != nil {
		t.Fatalf("%s: %v", EnvESHome, err)
	}
	javaHome := findJDK(t)
	version, err := esVersion(dist)
	if err != nil {
		t.Fatal(err)
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		// Elasticsearch refuses to run as root.
		name := os.Getenv("CROWSNEST_DEV_ES_USER")
		if name == "" {
			name = "crowsnest-es"
		}
		u, err := user.Lookup(name)
		if err != nil {
			t.Skipf("running as root and there is no user %s to run Elasticsearch as (deploy/dev/services.sh up creates it): %v", name, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}

	root, err := os.MkdirTemp("", "crowsnest-access-es-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(root); err != nil {
			t.Logf("remove %s: %v", root, err)
		}
	})
	dir := func(parts ...string) string { return filepath.Join(append([]string{root}, parts...)...) }
	for _, d := range []string{"home/plugins/crowsnest-missing-modules", "config/jvm.options.d", "data", "logs", "tmp", "classes"} {
		if err := os.MkdirAll(dir(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A home of the node's own: the distribution's programs, plus the
	// plugin standing in for the modules the integ-test-zip lacks.
	for _, d := range []string{"bin", "lib", "modules"} {
		if err := os.Symlink(filepath.Join(dist, d), dir("home", d)); err != nil {
			t.Fatal(err)
		}
	}
	run := func(name string, args ...string) {
		t.Helper()
		out, err := exec.Command(filepath.Join(javaHome, "bin", name), args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	src, err := filepath.Abs(filepath.Join("testdata", "esplugin"))
	if err != nil {
		t.Fatal(err)
	}
	run("javac", "--release", "17", "-nowarn", "-d", dir("classes"), "-cp", filepath.Join(dist, "lib", "*"), filepath.Join(src, "MissingModulesPlugin.java"))
	run("jar", "cf", dir("home/plugins/crowsnest-missing-modules/crowsnest-missing-modules.jar"), "-C", dir("classes"), ".")
	desc, err := os.ReadFile(filepath.Join(src, "plugin-descriptor.properties.in"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir("home/plugins/crowsnest-missing-modules/plugin-descriptor.properties"), bytes.ReplaceAll(desc, []byte("@ES_VERSION@"), []byte(version)))

	// TLS: a CA of the test's, the node's certificate for 127.0.0.1, and
	// another CA that must not be trusted for it.
	caCert, caKey := newCA(t, "crowsnest test CA")
	wrongCA, _ := newCA(t, "crowsnest wrong CA")
	nodeCert, nodeKey := newLeaf(t, caCert, caKey)
	write(t, dir("config/ca.crt"), pemCert(caCert.Raw))
	write(t, dir("config/wrong-ca.crt"), pemCert(wrongCA.Raw))
	// The chain, as Elasticsearch's own set-up presents it: clients that
	// pin the CA by fingerprint find it in the handshake.
	write(t, dir("config/node.crt"), append(pemCert(nodeCert), pemCert(caCert.Raw)...))
	write(t, dir("config/node.key"), nodeKey)

	httpPort, transportPort := freePort(t), freePort(t)
	write(t, dir("config/elasticsearch.yml"), []byte(fmt.Sprintf(`cluster.name: crowsnest-access-test
node.name: access-1
path.data: %s
path.logs: %s
network.host: 127.0.0.1
http.port: %d
transport.port: %d
discovery.type: single-node
xpack.security.enabled: true
xpack.security.http.ssl.enabled: true
xpack.security.http.ssl.certificate: node.crt
xpack.security.http.ssl.key: node.key
cluster.routing.allocation.disk.threshold_enabled: false
`, dir("data"), dir("logs"), httpPort, transportPort)))
	for _, f := range []string{"jvm.options", "log4j2.properties"} {
		b, err := os.ReadFile(filepath.Join(dist, "config", f))
		if err != nil {
			t.Fatal(err)
		}
		write(t, dir("config", f), b)
	}
	// The administrator lives in the file realm (no security index needed
	// to log in); everyone crowsnest creates is a native user.
	node := &securedES{
		URL: fmt.Sprintf("https://127.0.0.1:%d", httpPort), CAFile: dir("config/ca.crt"), WrongCAFile: dir("config/wrong-ca.crt"),
		Admin: "cn_admin", AdminPassword: "cn-admin-" + rand.Text(),
	}
	sum := sha256.Sum256(caCert.Raw)
	node.CAFingerprint = hex.EncodeToString(sum[:])
	hash, err := bcrypt.GenerateFromPassword([]byte(node.AdminPassword), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir("config/users"), []byte(node.Admin+":"+string(hash)+"\n"))
	write(t, dir("config/users_roles"), []byte("superuser:"+node.Admin+"\n"))
	if cred != nil {
		if err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, int(cred.Uid), int(cred.Gid))
		}); err != nil {
			t.Fatal(err)
		}
	}

	out, err := os.Create(dir("out.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(dir("home/bin/elasticsearch"))
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "HOME=" + dir("tmp"),
		"ES_JAVA_HOME=" + javaHome, "ES_PATH_CONF=" + dir("config"), "ES_TMPDIR=" + dir("tmp"), "ES_JAVA_OPTS=-Xms384m -Xmx384m -XX:TieredStopAtLevel=1"}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group: the launcher starts the server as a child,
	// and both must go when the test ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	node.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}

	tail := func() string {
		b, _ := os.ReadFile(dir("out.log"))
		l, _ := os.ReadFile(dir("logs", "crowsnest-access-test.log"))
		b = append(b, l...)
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		return string(b)
	}
	started := time.Now()
	deadline := started.Add(150 * time.Second)
	for {
		status, body, err := node.call(node.Admin, node.AdminPassword, "GET", "/_cluster/health?wait_for_status=yellow&timeout=1s", "")
		if err == nil && status == http.StatusOK && strings.Contains(body, `"status":"`) {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("Elasticsearch exited: %v\n%s", err, tail())
		case <-time.After(time.Second):
		}
		if time.Now().After(deadline) {
			t.Fatalf("Elasticsearch not up after 150 s (last: %d %v %s)\n%s", status, err, body, tail())
		}
	}
	t.Logf("secured Elasticsearch up in %s at %s", time.Since(started).Round(100*time.Millisecond), node.URL)
	status, body, err := node.call(node.Admin, node.AdminPassword, "POST", "/_license/start_trial?acknowledge=true", "")
	if err != nil || status != http.StatusOK || !strings.Contains(body, `"trial_was_started":true`) {
		t.Fatalf("start the trial license: %d %v %s", status, err, body)
	}
	return node
}

// call performs one request as user over the pinned CA.
func (n *securedES) call(user, password, method, path, body string) (int, string, error) {
	req, err := http.NewRequest(method, n.URL+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.SetBasicAuth(user, password)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := n.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, string(b), err
}

func findJDK(t *testing.T) string {
	t.Helper()
	var candidates []string
	for _, v := range []string{"CROWSNEST_TEST_ES_JAVA_HOME", "CROWSNEST_DEV_ES_JAVA_HOME", "JAVA_HOME"} {
		if h := os.Getenv(v); h != "" {
			candidates = append(candidates, h)
		}
	}
	jvms, _ := filepath.Glob("/usr/lib/jvm/*")
	sort.Strings(jvms)
	candidates = append(candidates, jvms...)
	for _, h := range candidates {
		ok := true
		for _, b := range []string{"java", "javac", "jar"} {
			if _, err := os.Stat(filepath.Join(h, "bin", b)); err != nil {
				ok = false
			}
		}
		if ok {
			return h
		}
	}
	t.Skip("no JDK with javac and jar (set CROWSNEST_TEST_ES_JAVA_HOME): the test compiles a plugin for the node it starts")
	return ""
}

// esVersion reads the distribution's version from its server jar's name.
func esVersion(dist string) (string, error) {
	jars, err := filepath.Glob(filepath.Join(dist, "lib", "elasticsearch-[0-9]*.jar"))
	if err != nil || len(jars) != 1 {
		return "", fmt.Errorf("%s: want one lib/elasticsearch-<version>.jar, found %v (%v)", dist, jars, err)
	}
	return strings.TrimSuffix(strings.TrimPrefix(filepath.Base(jars[0]), "elasticsearch-"), ".jar"), nil
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func newCA(t *testing.T, cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// newLeaf returns a server certificate for 127.0.0.1 and localhost signed
// by ca, and its key as PKCS #8 PEM.
func newLeaf(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (der, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err = x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return der, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k})
}

func serial(t *testing.T) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
