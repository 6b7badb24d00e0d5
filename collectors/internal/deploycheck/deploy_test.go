package deploycheck

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/crowsnest-siem/crowsnest/deploy/helm/chartcheck/hardening"
)

const root = "../../../deploy/k8s"

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// documents splits every manifest under deploy/k8s into its YAML documents.
func documents(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, doc := range bytes.Split(b, []byte("\n---\n")) {
			if len(bytes.TrimSpace(doc)) > 0 {
				out[filepath.Base(path)+"#"+string(rune('0'+i))] = doc
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("no manifests")
	}
	return out
}

// strict decodes doc into v, refusing unknown or duplicate fields.
func strict(t *testing.T, name string, doc []byte, v any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(doc, v); err != nil {
		t.Errorf("%s: %v", name, err)
	}
}

func TestManifestsDecodeStrictlyAndAreHardened(t *testing.T) {
	workloads := 0
	for name, doc := range documents(t) {
		var tm typeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var spec *corev1.PodSpec
		switch tm.APIVersion + "/" + tm.Kind {
		case "apps/v1/Deployment":
			var d appsv1.Deployment
			strict(t, name, doc, &d)
			spec = &d.Spec.Template.Spec
		case "apps/v1/DaemonSet":
			var d appsv1.DaemonSet
			strict(t, name, doc, &d)
			spec = &d.Spec.Template.Spec
		case "v1/ConfigMap":
			var c corev1.ConfigMap
			strict(t, name, doc, &c)
		case "v1/Service":
			var s corev1.Service
			strict(t, name, doc, &s)
		case "v1/Namespace":
			var n corev1.Namespace
			strict(t, name, doc, &n)
		case "audit.k8s.io/v1/Policy":
			checkPolicy(t, name, doc)
		case "v1/Config":
			checkKubeconfig(t, name, doc)
		default:
			t.Errorf("%s: %s/%s: no check for this kind; add one", name, tm.APIVersion, tm.Kind)
		}
		if spec != nil {
			workloads++
			hardened(t, name, spec)
		}
	}
	if workloads < 3 {
		t.Errorf("%d workloads checked, want the sidecar Deployment, the webhook Deployment and the DaemonSet", workloads)
	}
}

// hardened applies the invariants the Helm chart's check shares
// (deploy/helm/chartcheck/hardening).
func hardened(t *testing.T, name string, spec *corev1.PodSpec) {
	t.Helper()
	if err := hardening.PodSpec(name, spec); err != nil {
		t.Error(err)
	}
}

// checkPolicy checks the audit policy's shape (its Go type lives in
// k8s.io/apiserver, which the collectors do not need; deploy/helm/chartcheck
// TestAuditPolicy decodes it into that type and evaluates it).
func checkPolicy(t *testing.T, name string, doc []byte) {
	var p struct {
		typeMeta   `json:",inline"`
		OmitStages []string `json:"omitStages"`
		Rules      []struct {
			Level           string           `json:"level"`
			Users           []string         `json:"users"`
			UserGroups      []string         `json:"userGroups"`
			Verbs           []string         `json:"verbs"`
			Namespaces      []string         `json:"namespaces"`
			Resources       []map[string]any `json:"resources"`
			NonResourceURLs []string         `json:"nonResourceURLs"`
		} `json:"rules"`
	}
	strict(t, name, doc, &p)
	levels := map[string]bool{"None": true, "Metadata": true, "Request": true, "RequestResponse": true}
	for i, r := range p.Rules {
		if !levels[r.Level] {
			t.Errorf("%s: rule %d: level %q", name, i, r.Level)
		}
	}
	if len(p.Rules) == 0 || p.Rules[len(p.Rules)-1].Level == "None" {
		t.Errorf("%s: the last rule must catch everything at a level above None", name)
	}
}

// checkKubeconfig checks the webhook kubeconfig: HTTPS, a CA, a client
// certificate.
func checkKubeconfig(t *testing.T, name string, doc []byte) {
	var k struct {
		typeMeta `json:",inline"`
		Clusters []struct {
			Name    string `json:"name"`
			Cluster struct {
				Server               string `json:"server"`
				CertificateAuthority string `json:"certificate-authority"`
			} `json:"cluster"`
		} `json:"clusters"`
		Contexts []struct {
			Name    string            `json:"name"`
			Context map[string]string `json:"context"`
		} `json:"contexts"`
		CurrentContext string `json:"current-context"`
		Users          []struct {
			Name string `json:"name"`
			User struct {
				ClientCertificate string `json:"client-certificate"`
				ClientKey         string `json:"client-key"`
			} `json:"user"`
		} `json:"users"`
	}
	strict(t, name, doc, &k)
	if len(k.Clusters) != 1 || !strings.HasPrefix(k.Clusters[0].Cluster.Server, "https://") || k.Clusters[0].Cluster.CertificateAuthority == "" {
		t.Errorf("%s: the webhook must be HTTPS with a CA", name)
	}
	if len(k.Users) != 1 || k.Users[0].User.ClientCertificate == "" || k.Users[0].User.ClientKey == "" {
		t.Errorf("%s: the API server must present a client certificate", name)
	}
}
