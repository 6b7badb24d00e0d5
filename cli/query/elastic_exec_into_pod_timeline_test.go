package query

import (
	"strings"
	"testing"
)

// The request URIs of kubectl exec and attach, read as ClickHouse's
// extractURLParameter and decodeURLComponent read them.
func TestExecURI(t *testing.T) {
	for _, tc := range []struct {
		uri, container, command string
	}{
		{"/api/v1/namespaces/p/pods/a/exec?command=sh&command=-c&command=id%20-u&container=app&stdin=true", "app", "sh -c id -u"},
		{"/api/v1/namespaces/p/pods/a/attach?container=sidecar", "sidecar", ""},
		{"/api/v1/namespaces/p/pods/a/exec?container=a&container=b&command=a+b", "a", "a+b"},
		{"/api/v1/namespaces/p/pods/a/exec?command=%zz#command=x", "", "%zz"},
		{"/api/v1/namespaces/p/pods/a/exec", "", ""},
		{"", "", ""},
	} {
		if got := urlParameter(tc.uri, "container"); got != tc.container {
			t.Errorf("container of %q = %q, want %q", tc.uri, got, tc.container)
		}
		if got := execCommand(tc.uri); got != tc.command {
			t.Errorf("command of %q = %q, want %q", tc.uri, got, tc.command)
		}
	}
}

func FuzzExecURI(f *testing.F) {
	f.Add("/api/v1/namespaces/p/pods/a/exec?command=sh&command=-c&command=id%20-u&container=app")
	f.Add("/x?container=&command=%&command=%41#frag")
	f.Fuzz(func(t *testing.T, uri string) {
		c := urlParameter(uri, "container")
		if c != "" && !strings.Contains(uri, "container="+c) {
			t.Fatalf("container %q is not in %q", c, uri)
		}
		if strings.Contains(c, "&") || strings.Contains(c, "#") {
			t.Fatalf("container %q runs past its parameter", c)
		}
		if execCommand(uri) != "" && !strings.Contains(uri, "command=") {
			t.Fatalf("a command from %q, which has none", uri)
		}
	})
}
