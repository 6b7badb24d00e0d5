package chartcheck

import (
	"net/url"
	"os"
	"strings"
	"testing"

	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/apiserver/pkg/audit/policy"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	clientcmdv1 "k8s.io/client-go/tools/clientcmd/api/v1"
	"sigs.k8s.io/yaml"
)

const apiserverDir = "../../k8s/apiserver/"

// TestAuditPolicy decodes deploy/k8s/apiserver/audit-policy.yaml strictly
// into audit.k8s.io/v1 (a misspelt key would be dropped silently by the
// API server's own lenient decoder), loads it with the API server's loader,
// which validates it, and evaluates it as the API server does, with its
// policy evaluator, against requests whose level is the point of the
// policy: the evidence kept, secrets' values never, the noise dropped.
func TestAuditPolicy(t *testing.T) {
	data, err := os.ReadFile(apiserverDir + "audit-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var strict auditv1.Policy
	if err := yaml.UnmarshalStrict(data, &strict); err != nil {
		t.Fatalf("strict decode: %v", err)
	}
	if strict.APIVersion != "audit.k8s.io/v1" || strict.Kind != "Policy" {
		t.Fatalf("apiVersion %q kind %q", strict.APIVersion, strict.Kind)
	}
	p, err := policy.LoadPolicyFromBytes(data)
	if err != nil {
		t.Fatalf("the API server's loader refuses it: %v", err)
	}
	eval := policy.NewPolicyRuleEvaluator(p)

	admin := &user.DefaultInfo{Name: "alice@example.com", Groups: []string{"system:authenticated"}}
	ci := &user.DefaultInfo{Name: "system:serviceaccount:ci:deployer", Groups: []string{"system:serviceaccounts", "system:authenticated"}}
	node := &user.DefaultInfo{Name: "system:node:worker-1", Groups: []string{"system:nodes", "system:authenticated"}}
	res := func(u user.Info, verb, ns, group, resource, sub string) authorizer.AttributesRecord {
		return authorizer.AttributesRecord{User: u, Verb: verb, Namespace: ns, APIGroup: group, Resource: resource, Subresource: sub, ResourceRequest: true}
	}
	nonres := func(u user.Info, path string) authorizer.AttributesRecord {
		return authorizer.AttributesRecord{User: u, Verb: "get", Path: path}
	}
	tests := []struct {
		name  string
		attrs authorizer.AttributesRecord
		want  auditinternal.Level
	}{
		// Kept with bodies: the evidence.
		{"exec into a pod", res(admin, "create", "payments", "", "pods", "exec"), auditinternal.LevelRequestResponse},
		{"attach", res(admin, "create", "payments", "", "pods", "attach"), auditinternal.LevelRequestResponse},
		{"port-forward", res(admin, "create", "payments", "", "pods", "portforward"), auditinternal.LevelRequestResponse},
		{"ephemeral debug container", res(admin, "patch", "payments", "", "pods", "ephemeralcontainers"), auditinternal.LevelRequestResponse},
		{"cluster-admin binding", res(ci, "create", "", "rbac.authorization.k8s.io", "clusterrolebindings", ""), auditinternal.LevelRequestResponse},
		{"role edit", res(ci, "patch", "payments", "rbac.authorization.k8s.io", "roles", ""), auditinternal.LevelRequestResponse},
		{"RBAC read", res(admin, "list", "", "rbac.authorization.k8s.io", "clusterroles", ""), auditinternal.LevelRequestResponse},
		{"admission webhook change", res(admin, "delete", "", "admissionregistration.k8s.io", "validatingwebhookconfigurations", ""), auditinternal.LevelRequestResponse},
		{"CSR approval", res(admin, "update", "", "certificates.k8s.io", "certificatesigningrequests", "approval"), auditinternal.LevelRequestResponse},
		{"privileged pod created", res(ci, "create", "payments", "", "pods", ""), auditinternal.LevelRequestResponse},
		{"deployment patched", res(ci, "patch", "payments", "apps", "deployments", ""), auditinternal.LevelRequestResponse},
		{"cronjob created", res(ci, "create", "payments", "batch", "cronjobs", ""), auditinternal.LevelRequestResponse},
		// Secrets and kin: who and which, never the value, whatever the verb.
		{"secret read", res(admin, "get", "payments", "", "secrets", ""), auditinternal.LevelMetadata},
		{"secret list", res(ci, "list", "", "", "secrets", ""), auditinternal.LevelMetadata},
		{"secret written", res(ci, "update", "payments", "", "secrets", ""), auditinternal.LevelMetadata},
		{"configmap written", res(ci, "create", "payments", "", "configmaps", ""), auditinternal.LevelMetadata},
		{"token requested", res(ci, "create", "payments", "", "serviceaccounts", "token"), auditinternal.LevelMetadata},
		{"token review", res(ci, "create", "", "authentication.k8s.io", "tokenreviews", ""), auditinternal.LevelMetadata},
		// Other writes with the request, reads with metadata.
		{"networkpolicy deleted", res(admin, "delete", "payments", "networking.k8s.io", "networkpolicies", ""), auditinternal.LevelRequest},
		{"namespace created", res(admin, "create", "", "", "namespaces", ""), auditinternal.LevelRequest},
		{"pod read", res(admin, "get", "payments", "", "pods", ""), auditinternal.LevelMetadata},
		{"pod logs", res(admin, "get", "payments", "", "pods", "log"), auditinternal.LevelMetadata},
		{"node update by a user", res(admin, "update", "", "", "nodes", ""), auditinternal.LevelRequest},
		{"lease in an app namespace", res(ci, "update", "payments", "coordination.k8s.io", "leases", ""), auditinternal.LevelRequest},
		// Dropped: noise.
		{"health probe", nonres(&user.DefaultInfo{Name: "system:anonymous"}, "/readyz"), auditinternal.LevelNone},
		{"discovery", nonres(admin, "/apis/apps/v1"), auditinternal.LevelNone},
		{"openapi", nonres(admin, "/openapi/v3"), auditinternal.LevelNone},
		{"leader election", res(&user.DefaultInfo{Name: "system:kube-scheduler"}, "update", "kube-system", "coordination.k8s.io", "leases", ""), auditinternal.LevelNone},
		{"node heartbeat lease", res(node, "update", "kube-node-lease", "coordination.k8s.io", "leases", ""), auditinternal.LevelNone},
		{"kubelet reads its node", res(node, "get", "", "", "nodes", ""), auditinternal.LevelNone},
		{"kube-proxy watches", res(&user.DefaultInfo{Name: "system:kube-proxy"}, "watch", "", "discovery.k8s.io", "endpointslices", ""), auditinternal.LevelNone},
		{"events", res(ci, "create", "payments", "", "events", ""), auditinternal.LevelNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := eval.EvaluatePolicyRule(tt.attrs)
			if got.Level != tt.want {
				t.Errorf("level %s, want %s", got.Level, tt.want)
			}
			if got.Level != auditinternal.LevelNone {
				omitted := false
				for _, s := range got.OmitStages {
					omitted = omitted || s == auditinternal.StageRequestReceived
				}
				if !omitted {
					t.Errorf("RequestReceived not omitted (every request would be sent twice): %v", got.OmitStages)
				}
			}
		})
	}
	// A secret must never be caught by a body-logging rule, even through a
	// group-wide rule added later above rule 2: the first rule naming
	// secrets must be a Metadata one.
	for i, r := range strict.Rules {
		for _, g := range r.Resources {
			if g.Group == "" && (len(g.Resources) == 0 || contains(g.Resources, "secrets")) && r.Level != auditv1.LevelNone {
				if r.Level != auditv1.LevelMetadata {
					t.Errorf("rule %d (level %s) is the first to cover core secrets: want Metadata", i, r.Level)
				}
				return
			}
		}
	}
}

func contains(xs []string, x string) bool {
	for _, s := range xs {
		if s == x {
			return true
		}
	}
	return false
}

// TestWebhookKubeconfig decodes the API server's --audit-webhook-config-file
// strictly into client-go's kubeconfig v1 types and checks it is mutual
// TLS: an https server verified against a CA file, never skipped, and the
// API server authenticated by a client certificate, not a token or a
// password (which the collector does not accept).
func TestWebhookKubeconfig(t *testing.T) {
	data, err := os.ReadFile(apiserverDir + "webhook-kubeconfig.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg clientcmdv1.Config
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		t.Fatalf("strict decode: %v", err)
	}
	if cfg.Kind != "Config" || cfg.APIVersion != "v1" {
		t.Errorf("kind %q apiVersion %q", cfg.Kind, cfg.APIVersion)
	}
	if len(cfg.Clusters) != 1 || len(cfg.AuthInfos) != 1 || len(cfg.Contexts) != 1 {
		t.Fatalf("%d clusters, %d users, %d contexts: want one of each (the API server uses the current context)", len(cfg.Clusters), len(cfg.AuthInfos), len(cfg.Contexts))
	}
	ctx := cfg.Contexts[0]
	if cfg.CurrentContext != ctx.Name || ctx.Context.Cluster != cfg.Clusters[0].Name || ctx.Context.AuthInfo != cfg.AuthInfos[0].Name {
		t.Errorf("current-context %q does not join cluster %q and user %q", cfg.CurrentContext, cfg.Clusters[0].Name, cfg.AuthInfos[0].Name)
	}
	c := cfg.Clusters[0].Cluster
	u, err := url.Parse(c.Server)
	if err != nil || u.Scheme != "https" || u.Path != "/audit" {
		t.Errorf("server %q: want https://...:port/audit (the collector's path)", c.Server)
	}
	if c.InsecureSkipTLSVerify || (c.CertificateAuthority == "" && len(c.CertificateAuthorityData) == 0) {
		t.Errorf("the collector's certificate is not verified against a CA")
	}
	a := cfg.AuthInfos[0].AuthInfo
	if (a.ClientCertificate == "" && len(a.ClientCertificateData) == 0) || (a.ClientKey == "" && len(a.ClientKeyData) == 0) {
		t.Errorf("no client certificate and key: the collector requires mutual TLS")
	}
	if a.Token != "" || a.TokenFile != "" || a.Username != "" || a.Password != "" || a.Exec != nil || a.AuthProvider != nil {
		t.Errorf("credentials other than the client certificate: %+v", a)
	}
	// Chart and file agree: NOTES.txt tells operators this URL matches a
	// release named crowsnest in namespace crowsnest.
	ms, err := Render(chartDir, Release{Name: "crowsnest", Namespace: "crowsnest"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	host := strings.Split(u.Host, ".")[0]
	found := false
	for _, m := range ms {
		if strings.Contains(m.Body, "kind: Service\n") && strings.Contains(m.Body, "name: "+host+"\n") {
			found = true
		}
	}
	if !found {
		t.Errorf("the chart (release crowsnest) renders no Service %s, which %s names", host, c.Server)
	}
}
