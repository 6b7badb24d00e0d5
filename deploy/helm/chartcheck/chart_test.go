package chartcheck

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/crowsnest-siem/crowsnest/deploy/helm/chartcheck/hardening"
)

const chartDir = "../crowsnest"

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var rel = Release{Name: "cn", Namespace: "crowsnest"}

// valueSets are the configurations every check runs against.
var valueSets = map[string]string{
	"default": ``,
	"all-sinks": `
images:
  collector: {repository: registry.example.com/crowsnest-collector, tag: "", digest: "sha256:1111111111111111111111111111111111111111111111111111111111111111"}
  processor: {repository: registry.example.com/crowsnest-processor, tag: "", digest: "sha256:2222222222222222222222222222222222222222222222222222222222222222"}
  sink: {repository: registry.example.com/crowsnest-sink, tag: "", digest: "sha256:3333333333333333333333333333333333333333333333333333333333333333"}
  cli: {repository: registry.example.com/crowsnest, tag: "", digest: "sha256:4444444444444444444444444444444444444444444444444444444444444444"}
nats:
  tls: {existingSecret: nats-client-tls, clientCert: true, serverSecret: nats-server-tls}
  auth:
    enabled: true
    serverSecret: nats-auth
    seeds:
      admin: nats-admin
      processor: nats-processor
      nodeCollectors: nats-node-collectors
      webhook: nats-webhook
      sidecar: nats-sidecar
      sinks: {clickhouse: nats-sink-clickhouse, elasticsearch: nats-sink-elasticsearch, file: nats-sink-file}
processor:
  rulesConfigMap: extra-rules
  config:
    processor: {detect: {suppression_window: 5m}}
sinks:
  clickhouse: {existingSecret: ch-writer, tlsSecret: ch-ca}
  elasticsearch: {enabled: true, existingSecret: es-writer, tlsSecret: es-ca}
  file: {enabled: true, persistence: {existingClaim: crowsnest-files, sizeLimit: 1Gi}}
nodeCollector:
  docker: {enabled: true, socketGroup: 998}
networkPolicy:
  metricsFrom:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}
metrics:
  serviceMonitor: {enabled: true, labels: {release: prometheus}}
`,
	"external-nats": `
nats:
  enabled: false
  url: tls://nats.shared.example.com:4222
  external:
    to:
      - ipBlock: {cidr: 10.20.0.0/16}
    ports: [{port: 4222, protocol: TCP}]
  tls: {existingSecret: nats-ca}
sinks:
  elasticsearch:
    enabled: true
    existingSecret: es-writer
    apiKeySecretKey: api-key
    config: {addresses: ["https://es.example.com:9200"]}
    egress:
      to: [{ipBlock: {cidr: 10.30.0.0/16}}]
      ports: [{port: 9200, protocol: TCP}]
`,
	"sidecar-example": `
sidecarExample: {enabled: true}
nats:
  extraClients:
    - namespaceSelector: {matchLabels: {crowsnest.dev/sidecars: "true"}}
auditWebhook:
  from: [{ipBlock: {cidr: 10.0.0.0/24}}]
`,
	// Identities against an external cluster, with the sidecar example and
	// a release-specific topology the setup Job must carry.
	"auth-external-nats": `
nats:
  enabled: false
  url: tls://nats.shared.example.com:4222
  external:
    to: [{ipBlock: {cidr: 10.20.0.0/16}}]
  tls: {existingSecret: nats-ca}
  auth:
    enabled: true
    seeds:
      admin: nats-admin
      processor: nats-processor
      nodeCollectors: nats-node-collectors
      webhook: nats-webhook
      sidecar: nats-sidecar
      sinks: {clickhouse: nats-sink-clickhouse}
    webhookCollectorId: audit-hook
topology: {partitions: 4, replicas: 3}
processor:
  config:
    processor: {partitions: {lease: 20s}}
sidecarExample: {enabled: true}
`,
	"nats-disabled-no-policies": `
nats: {enabled: false, url: "nats://nats.other.svc:4222"}
networkPolicy: {enabled: false}
nodeCollector: {auditd: {enabled: false}}
processor: {autoscaling: {enabled: false}, replicas: 3}
`,
}

func render(t *testing.T, values string) []Manifest {
	t.Helper()
	var vals map[string]any
	if err := yaml.Unmarshal([]byte(values), &vals); err != nil {
		t.Fatalf("values: %v", err)
	}
	ms, err := Render(chartDir, rel, vals)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// rendered is one value set's output, decoded.
type rendered struct {
	pods        map[string]pod // by workload "Kind/name"
	configs     map[string]string
	natsConf    string
	policies    []networkingv1.NetworkPolicy
	pdbs        []policyv1.PodDisruptionBudget
	hpas        []autoscalingv2.HorizontalPodAutoscaler
	services    []corev1.Service
	accounts    map[string]corev1.ServiceAccount
	deployments map[string]bool
	monitors    int
	jobs        []batchv1.Job
}

type pod struct {
	component string
	labels    map[string]string
	meta      metav1.ObjectMeta
	spec      corev1.PodSpec
	// claims are a StatefulSet's volumeClaimTemplates, volumes its pods have.
	claims []string
}

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// serviceMonitor is the part of the Prometheus Operator's type the chart
// uses; its Go type lives in a module the chart check does not need.
type serviceMonitor struct {
	typeMeta `json:",inline"`
	Metadata metav1.ObjectMeta `json:"metadata"`
	Spec     struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// decode decodes every manifest strictly (unknown or duplicate fields fail)
// into its k8s.io/api type.
func decode(t *testing.T, ms []Manifest) rendered {
	t.Helper()
	r := rendered{pods: map[string]pod{}, configs: map[string]string{}, accounts: map[string]corev1.ServiceAccount{}, deployments: map[string]bool{}}
	strict := func(m Manifest, v any) bool {
		if err := yaml.UnmarshalStrict([]byte(m.Body), v); err != nil {
			t.Errorf("%s: %v", m.Source, err)
			return false
		}
		return true
	}
	addPod := func(kind string, meta metav1.ObjectMeta, tpl corev1.PodTemplateSpec, sel *metav1.LabelSelector) {
		if meta.Namespace != rel.Namespace {
			t.Errorf("%s/%s: namespace %q", kind, meta.Name, meta.Namespace)
		}
		if sel == nil || !labels.SelectorFromSet(sel.MatchLabels).Matches(labels.Set(tpl.Labels)) {
			t.Errorf("%s/%s: selector does not match the pod template's labels", kind, meta.Name)
		}
		r.pods[kind+"/"+meta.Name] = pod{component: tpl.Labels["app.kubernetes.io/component"], labels: tpl.Labels, meta: tpl.ObjectMeta, spec: tpl.Spec}
	}
	for _, m := range ms {
		var tm typeMeta
		if err := yaml.Unmarshal([]byte(m.Body), &tm); err != nil {
			t.Fatalf("%s: %v", m.Source, err)
		}
		switch tm.APIVersion + "/" + tm.Kind {
		case "apps/v1/Deployment":
			var d appsv1.Deployment
			if strict(m, &d) {
				addPod("Deployment", d.ObjectMeta, d.Spec.Template, d.Spec.Selector)
				r.deployments[d.Name] = true
			}
		case "apps/v1/DaemonSet":
			var d appsv1.DaemonSet
			if strict(m, &d) {
				addPod("DaemonSet", d.ObjectMeta, d.Spec.Template, d.Spec.Selector)
			}
		case "apps/v1/StatefulSet":
			var s appsv1.StatefulSet
			if strict(m, &s) {
				addPod("StatefulSet", s.ObjectMeta, s.Spec.Template, s.Spec.Selector)
				p := r.pods["StatefulSet/"+s.Name]
				for _, c := range s.Spec.VolumeClaimTemplates {
					p.claims = append(p.claims, c.Name)
				}
				r.pods["StatefulSet/"+s.Name] = p
			}
		case "batch/v1/Job":
			var j batchv1.Job
			if strict(m, &j) {
				addPod("Job", j.ObjectMeta, j.Spec.Template, &metav1.LabelSelector{MatchLabels: j.Spec.Template.Labels})
				r.jobs = append(r.jobs, j)
			}
		case "v1/ConfigMap":
			var c corev1.ConfigMap
			if strict(m, &c) {
				if y, ok := c.Data["crowsnest.yaml"]; ok {
					r.configs[c.Name] = y
				}
				if n, ok := c.Data["nats.conf"]; ok {
					r.natsConf = n
				}
			}
		case "v1/Service":
			var s corev1.Service
			if strict(m, &s) {
				r.services = append(r.services, s)
			}
		case "v1/ServiceAccount":
			var s corev1.ServiceAccount
			if strict(m, &s) {
				r.accounts[s.Name] = s
			}
		case "networking.k8s.io/v1/NetworkPolicy":
			var p networkingv1.NetworkPolicy
			if strict(m, &p) {
				r.policies = append(r.policies, p)
			}
		case "policy/v1/PodDisruptionBudget":
			var p policyv1.PodDisruptionBudget
			if strict(m, &p) {
				r.pdbs = append(r.pdbs, p)
			}
		case "autoscaling/v2/HorizontalPodAutoscaler":
			var h autoscalingv2.HorizontalPodAutoscaler
			if strict(m, &h) {
				r.hpas = append(r.hpas, h)
			}
		case "monitoring.coreos.com/v1/ServiceMonitor":
			var s serviceMonitor
			if strict(m, &s) {
				r.monitors++
			}
		default:
			t.Errorf("%s: %s/%s: no check for this kind; add one", m.Source, tm.APIVersion, tm.Kind)
		}
	}
	return r
}

func TestRenderedManifestsAreStrictAndHardened(t *testing.T) {
	for name, values := range valueSets {
		t.Run(name, func(t *testing.T) {
			r := decode(t, render(t, values))
			if len(r.pods) < 3 {
				t.Fatalf("%d workloads rendered", len(r.pods))
			}
			for w, p := range r.pods {
				if err := hardening.PodSpec(w, &p.spec); err != nil {
					t.Error(err)
				}
				sa, ok := r.accounts[p.spec.ServiceAccountName]
				if !ok {
					t.Errorf("%s: service account %q is not rendered by the chart", w, p.spec.ServiceAccountName)
				} else if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
					t.Errorf("ServiceAccount %s: automountServiceAccountToken must be false", sa.Name)
				}
				for _, c := range p.spec.Containers {
					if c.Name == "app" {
						continue // the sidecar example's application
					}
					if strings.HasSuffix(c.Image, ":latest") || !strings.ContainsAny(c.Image, ":@") {
						t.Errorf("%s container %s: image %q is not pinned", w, c.Name, c.Image)
					}
					if strings.Contains(values, "digest: \"sha256:") && strings.Contains(c.Image, "crowsnest-") && !strings.Contains(c.Image, "@sha256:") {
						t.Errorf("%s container %s: image %q ignores the digest", w, c.Name, c.Image)
					}
				}
				checkSecretVolumesAreReadOnly(t, w, p.spec)
				checkReferences(t, w, p)
			}
		})
	}
}

// checkSecretVolumesAreReadOnly: credentials are mounted as files, read-only,
// and never passed in the environment.
func checkSecretVolumesAreReadOnly(t *testing.T, w string, spec corev1.PodSpec) {
	t.Helper()
	secret := map[string]bool{}
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			secret[v.Name] = true
		}
	}
	for _, c := range spec.Containers {
		for _, m := range c.VolumeMounts {
			if secret[m.Name] && !m.ReadOnly {
				t.Errorf("%s container %s: secret volume %s mounted writable", w, c.Name, m.Name)
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				t.Errorf("%s container %s: env %s from a Secret; mount it as a file", w, c.Name, e.Name)
			}
		}
		if len(c.EnvFrom) > 0 {
			t.Errorf("%s container %s: envFrom", w, c.Name)
		}
	}
}

// allowedEgress is, per component, the ports its NetworkPolicy may open
// outwards: NATS and DNS for everyone, the store for a sink, routes for the
// NATS servers. Any other port, or a rule to everywhere, fails.
func allowedEgress(component string, natsPorts []int32) []int32 {
	base := append([]int32{53}, natsPorts...)
	switch component {
	case "nats":
		return []int32{53, 6222}
	case "sink-clickhouse":
		return append(base, 8123, 8443, 9000, 9440)
	case "sink-elasticsearch":
		return append(base, 9200)
	}
	return base
}

// allowedIngress is, per component, the ports its NetworkPolicy may open
// inwards: metrics for everyone, the webhook port, the example app's port,
// NATS's client, route and monitoring ports.
func allowedIngress(component string) []int32 {
	switch component {
	case "audit-webhook":
		return []int32{9464, 9443}
	case "sidecar-example":
		return []int32{9464, 8080}
	case "nats":
		return []int32{4222, 6222, 8222}
	}
	return []int32{9464}
}

func TestNetworkPolicies(t *testing.T) {
	for name, values := range valueSets {
		t.Run(name, func(t *testing.T) {
			r := decode(t, render(t, values))
			if strings.Contains(values, "networkPolicy: {enabled: false}") {
				if len(r.policies) != 0 {
					t.Errorf("%d NetworkPolicies with networkPolicy.enabled false", len(r.policies))
				}
				return
			}
			natsPorts := []int32{4222}
			for w, p := range r.pods {
				var mine []networkingv1.NetworkPolicy
				for _, np := range r.policies {
					if labels.SelectorFromSet(np.Spec.PodSelector.MatchLabels).Matches(labels.Set(p.labels)) {
						mine = append(mine, np)
					}
				}
				if len(mine) != 1 {
					t.Errorf("%s: %d NetworkPolicies select it, want 1", w, len(mine))
					continue
				}
				np := mine[0]
				if len(np.Spec.PodSelector.MatchLabels) < 3 {
					t.Errorf("NetworkPolicy %s: selector %v is wider than one component", np.Name, np.Spec.PodSelector.MatchLabels)
				}
				if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
					t.Errorf("NetworkPolicy %s: policyTypes %v, want Ingress and Egress", np.Name, np.Spec.PolicyTypes)
				}
				allowed := allowedEgress(p.component, natsPorts)
				reachesNATS := false
				for i, rule := range np.Spec.Egress {
					if len(rule.To) == 0 || len(rule.Ports) == 0 {
						t.Errorf("NetworkPolicy %s: egress rule %d allows every destination or port", np.Name, i)
					}
					for _, peer := range rule.To {
						if wide(peer) {
							t.Errorf("NetworkPolicy %s: egress rule %d peer %+v reaches every pod of a namespace or more", np.Name, i, peer)
						}
					}
					for _, port := range rule.Ports {
						if port.Port == nil || !slices.Contains(allowed, port.Port.IntVal) {
							t.Errorf("NetworkPolicy %s: egress rule %d opens port %v; %s may reach only %v", np.Name, i, port.Port, p.component, allowed)
						}
						if port.Port != nil && port.Port.IntVal == 4222 {
							reachesNATS = true
							checkNATSPeers(t, np.Name, rule.To, r)
						}
					}
				}
				if p.component != "nats" && !reachesNATS {
					t.Errorf("NetworkPolicy %s: no egress to NATS", np.Name)
				}
				for i, rule := range np.Spec.Ingress {
					if len(rule.Ports) == 0 {
						t.Errorf("NetworkPolicy %s: ingress rule %d opens every port", np.Name, i)
					}
					for _, port := range rule.Ports {
						if port.Port == nil || !slices.Contains(allowedIngress(p.component), port.Port.IntVal) {
							t.Errorf("NetworkPolicy %s: ingress rule %d opens port %v; %s takes only %v", np.Name, i, port.Port, p.component, allowedIngress(p.component))
						}
					}
				}
			}
		})
	}
}

// checkNATSPeers: the NATS egress rule names the in-chart servers (their pod
// labels) or, with an external cluster, an explicit peer.
func checkNATSPeers(t *testing.T, policy string, peers []networkingv1.NetworkPolicyPeer, r rendered) {
	t.Helper()
	for _, peer := range peers {
		if peer.IPBlock != nil {
			if peer.IPBlock.CIDR == "0.0.0.0/0" || peer.IPBlock.CIDR == "::/0" {
				t.Errorf("NetworkPolicy %s: NATS egress to %s", policy, peer.IPBlock.CIDR)
			}
			continue
		}
		if peer.PodSelector == nil || len(peer.PodSelector.MatchLabels) == 0 {
			t.Errorf("NetworkPolicy %s: NATS egress peer %+v selects every pod", policy, peer)
			continue
		}
		if _, ok := r.pods["StatefulSet/cn-crowsnest-nats"]; ok {
			if !labels.SelectorFromSet(peer.PodSelector.MatchLabels).Matches(labels.Set(r.pods["StatefulSet/cn-crowsnest-nats"].labels)) {
				t.Errorf("NetworkPolicy %s: NATS egress peer does not select the NATS servers", policy)
			}
		}
	}
}

func TestDisruptionBudgetsAndAutoscalers(t *testing.T) {
	for name, values := range valueSets {
		t.Run(name, func(t *testing.T) {
			r := decode(t, render(t, values))
			pdbFor := map[string]bool{}
			for _, p := range r.pdbs {
				matched := 0
				for w, pd := range r.pods {
					if labels.SelectorFromSet(p.Spec.Selector.MatchLabels).Matches(labels.Set(pd.labels)) {
						matched++
						pdbFor[pd.component] = true
						if strings.HasPrefix(w, "DaemonSet/") {
							t.Errorf("PodDisruptionBudget %s selects the DaemonSet %s", p.Name, w)
						}
					}
				}
				if matched != 1 {
					t.Errorf("PodDisruptionBudget %s selects %d workloads, want 1", p.Name, matched)
				}
				if p.Spec.MaxUnavailable == nil && p.Spec.MinAvailable == nil {
					t.Errorf("PodDisruptionBudget %s: neither maxUnavailable nor minAvailable", p.Name)
				}
			}
			hpaFor := map[string]bool{}
			for _, h := range r.hpas {
				if h.Spec.ScaleTargetRef.Kind != "Deployment" || !r.deployments[h.Spec.ScaleTargetRef.Name] {
					t.Errorf("HorizontalPodAutoscaler %s targets %s/%s, not a rendered Deployment", h.Name, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name)
				}
				if len(h.Spec.Metrics) != 1 || h.Spec.Metrics[0].Resource == nil || h.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU {
					t.Errorf("HorizontalPodAutoscaler %s: want one CPU metric", h.Name)
				}
				hpaFor[strings.TrimPrefix(h.Spec.ScaleTargetRef.Name, "cn-crowsnest-")] = true
			}
			want := map[string]bool{}
			for _, p := range r.pods {
				want[p.component] = true
			}
			for _, c := range []string{"processor", "sink-clickhouse", "sink-elasticsearch", "sink-file", "audit-webhook", "nats"} {
				if want[c] && !pdbFor[c] {
					t.Errorf("%s: no PodDisruptionBudget", c)
				}
			}
			for _, c := range []string{"processor", "sink-clickhouse", "sink-elasticsearch"} {
				autoscaled := !strings.Contains(values, "autoscaling: {enabled: false}") || c != "processor"
				if want[c] && autoscaled && !hpaFor[c] {
					t.Errorf("%s: no HorizontalPodAutoscaler", c)
				}
			}
		})
	}
}

// TestConfigsLoadInTheStageBinaries checks every rendered crowsnest.yaml with
// `crowsnest config check` (the same strict loader and validation the
// stage binaries run at start), that a sink Deployment enables exactly its
// own sink, and that the NATS servers' nats.conf parses in nats-server.
func TestConfigsLoadInTheStageBinaries(t *testing.T) {
	bin := buildCLI(t)
	for name, values := range valueSets {
		t.Run(name, func(t *testing.T) {
			r := decode(t, render(t, values))
			if len(r.configs) == 0 {
				t.Fatal("no crowsnest.yaml rendered")
			}
			dir := t.TempDir()
			for cm, y := range r.configs {
				path := filepath.Join(dir, cm+".yaml")
				if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
					t.Fatal(err)
				}
				cmd := exec.Command(bin, "config", "check", path)
				cmd.Env = cleanEnv()
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("ConfigMap %s: crowsnest config check: %v\n%s\n--- crowsnest.yaml:\n%s", cm, err, out, y)
				}
				if sink, ok := strings.CutPrefix(cm, "cn-crowsnest-sink-"); ok {
					checkOneSink(t, cm, sink, y)
				}
			}
			if r.natsConf != "" {
				checkNATSConf(t, bin, r.natsConf)
			}
		})
	}
}

func checkOneSink(t *testing.T, cm, sink, y string) {
	t.Helper()
	var cfg struct {
		Sinks map[string]struct {
			Enabled bool `json:"enabled"`
		} `json:"sinks"`
	}
	if err := yaml.Unmarshal([]byte(y), &cfg); err != nil {
		t.Fatalf("ConfigMap %s: %v", cm, err)
	}
	for _, s := range []string{"clickhouse", "elasticsearch", "file", "terminal"} {
		c, ok := cfg.Sinks[s]
		if !ok {
			t.Errorf("ConfigMap %s: sinks.%s not set explicitly (the binary's default may enable it)", cm, s)
		}
		if c.Enabled != (s == sink) {
			t.Errorf("ConfigMap %s: sinks.%s.enabled = %t", cm, s, c.Enabled)
		}
	}
}

func checkNATSConf(t *testing.T, bin, conf string) {
	t.Helper()
	dir := t.TempDir()
	auth := strings.Contains(conf, `include "auth/auth.conf"`)
	var users int
	if auth {
		// The authorization block the README's commands generate, where
		// nats.auth.serverSecret is mounted.
		users = len(natsAuth(t, bin, filepath.Join(dir, "auth")))
	}
	if strings.Contains(conf, "/etc/nats/tls/") {
		// The server loads its certificate while parsing: give it one where
		// the Secret would be mounted.
		writeSelfSignedCert(t, dir)
		conf = strings.ReplaceAll(conf, "/etc/nats/tls/", dir+"/")
	}
	path := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("POD_NAME", "cn-crowsnest-nats-0")
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats.conf: %v\n%s", err, conf)
	}
	if !opts.JetStream || opts.StoreDir != "/data" {
		t.Errorf("nats.conf: jetstream %t, store_dir %q", opts.JetStream, opts.StoreDir)
	}
	if opts.ServerName != "cn-crowsnest-nats-0" {
		t.Errorf("nats.conf: server_name %q, want the pod name", opts.ServerName)
	}
	if len(opts.Routes) != 3 || opts.Cluster.Name != "crowsnest" || opts.Cluster.Port != 6222 {
		t.Errorf("nats.conf: %d routes, cluster %q port %d; want 3 routes in cluster crowsnest on 6222", len(opts.Routes), opts.Cluster.Name, opts.Cluster.Port)
	}
	if opts.SyncInterval == 0 {
		t.Error("nats.conf: sync_interval not applied")
	}
	if auth && len(opts.Nkeys) != users {
		t.Errorf("nats.conf: %d nkey users after the include, want the %d crowsnest nats-auth generated", len(opts.Nkeys), users)
	}
}

// cleanEnv drops CROWSNEST_* from the environment: config check would
// apply them as overrides.
func cleanEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "CROWSNEST_") {
			env = append(env, e)
		}
	}
	return env
}

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

// buildCLI builds the crowsnest command (its `config check` loads every
// stage's section) once per test binary, through the workspace;
// CHARTCHECK_CROWSNEST_BIN names a binary built already (make build's
// bin/crowsnest) instead.
func buildCLI(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("CHARTCHECK_CROWSNEST_BIN"); bin != "" {
		return bin
	}
	cliOnce.Do(func() {
		dir, err := os.MkdirTemp("", "chartcheck-cli")
		if err != nil {
			cliErr = err
			return
		}
		cliPath = filepath.Join(dir, "crowsnest")
		cmd := exec.Command("go", "build", "-o", cliPath, "github.com/crowsnest-siem/crowsnest/cli")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			cliErr = fmt.Errorf("go build the crowsnest command (needs the go.work workspace): %v\n%s", err, out.String())
		}
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return cliPath
}

// TestValuesRejected: values.schema.json and the templates' own checks
// refuse bad values with a message naming the value.
func TestValuesRejected(t *testing.T) {
	cases := []struct {
		name, values, want string
	}{
		{"root user", `podSecurity: {runAsUser: 0}`, "runAsUser"},
		{"typo in a key", `processor: {replcas: 3}`, "replcas"},
		{"malformed digest", `images: {sink: {repository: r, tag: "", digest: "sha256:abc"}}`, "digest"},
		{"limits missing", `processor: {resources: {limits: null}}`, "limits"},
		{"memory limit missing", `processor: {resources: {limits: {memory: null}}}`, "memory"},
		{"even NATS cluster", `nats: {replicas: 2}`, "replicas"},
		{"external NATS without url", `nats: {enabled: false}`, "url"},
		{"external NATS without peers", `nats: {enabled: false, url: "nats://n:4222"}`, "nats.external.to is required"},
		{"docker socket without its group", `nodeCollector: {docker: {enabled: true}}`, "socketGroup"},
		{"no node source", `nodeCollector: {k8sAudit: {enabled: false}, auditd: {enabled: false}}`, "enable at least one"},
		{"sink store unreachable", `sinks: {clickhouse: {egress: {to: [], ports: []}}}`, "sinks.clickhouse.egress.to is required"},
		{"webhook without TLS", `auditWebhook: {tls: {existingSecret: ""}}`, "auditWebhook.tls.existingSecret is required"},
		{"autoscaling min over max", `processor: {autoscaling: {enabled: true, minReplicas: 9, maxReplicas: 2, targetCPUUtilizationPercentage: 70}}`, "minReplicas"},
		{"pull policy", `imagePullPolicy: Sometimes`, "imagePullPolicy"},
		{"host path not absolute", `nodeCollector: {auditd: {enabled: true, hostPath: var/log/audit, file: audit.log}}`, "hostPath"},
		{"bad size", `nodeCollector: {spoolMaxBytes: 1G}`, "spoolMaxBytes"},
		{"NATS client TLS without server TLS", `nats: {tls: {existingSecret: nats-ca}}`, "go together"},
		{"NATS server TLS without client TLS", `nats: {tls: {serverSecret: nats-server-tls}}`, "go together"},
		{"auth without the server's block", authValues(`serverSecret: ""`), "nats.auth.serverSecret is required"},
		{"auth without the processor's seed", authValues(`seeds: {processor: ""}`), "nats.auth.seeds.processor is required"},
		{"auth without the admin's seed", authValues(`seeds: {admin: ""}`), "nats.auth.seeds.admin is required"},
		{"auth without the node collectors' seed", authValues(`seeds: {nodeCollectors: ""}`), "nats.auth.seeds.nodeCollectors is required"},
		{"auth without the webhook's seed", authValues(`seeds: {webhook: ""}`), "nats.auth.seeds.webhook is required"},
		{"auth without an enabled sink's seed", authValues(`seeds: {sinks: {clickhouse: ""}}`), "nats.auth.seeds.sinks.clickhouse is required"},
		{"auth with a bad collector id", `nats: {auth: {enabled: true, serverSecret: a, webhookCollectorId: "Audit.Hook"}}`, "webhookCollectorId"},
		{"egress to everywhere", `sinks: {clickhouse: {egress: {to: [{}], ports: []}}}`, "egress"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var vals map[string]any
			if err := yaml.Unmarshal([]byte(tc.values), &vals); err != nil {
				t.Fatal(err)
			}
			_, err := Render(chartDir, rel, vals)
			if err == nil {
				t.Fatalf("values %s rendered", tc.values)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// TestDefaultRenderGolden keeps the default output reviewable: a change to
// the templates shows up as a diff of testdata/default.yaml (go test
// -update rewrites it).
func TestDefaultRenderGolden(t *testing.T) {
	var b strings.Builder
	for _, m := range render(t, "") {
		fmt.Fprintf(&b, "# Source: %s\n%s\n---\n", m.Source, strings.TrimSpace(m.Body))
	}
	golden := filepath.Join("testdata", "default.yaml")
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != b.String() {
		t.Errorf("default render differs from %s; run go test -update and review the diff", golden)
	}
}

// writeSelfSignedCert writes tls.crt, tls.key and ca.crt (the same
// self-signed certificate) into dir.
func writeSelfSignedCert(t *testing.T, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "cn-crowsnest-nats"},
		DNSNames:              []string{"cn-crowsnest-nats.crowsnest.svc"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	for name, b := range map[string][]byte{
		"tls.crt": cert,
		"ca.crt":  cert,
		"tls.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// checkReferences: what the API server would refuse at apply time and a
// strict decode cannot see: a mount of a volume the pod does not have, a
// resourceFieldRef to another container's name that does not exist, a
// probe on a port name the container does not declare.
func checkReferences(t *testing.T, w string, p pod) {
	t.Helper()
	spec := p.spec
	volumes := map[string]bool{}
	for _, c := range p.claims {
		volumes[c] = true
	}
	for _, v := range spec.Volumes {
		if volumes[v.Name] {
			t.Errorf("%s: volume %s declared twice", w, v.Name)
		}
		volumes[v.Name] = true
	}
	containers := map[string]bool{}
	for _, c := range spec.Containers {
		containers[c.Name] = true
	}
	for _, c := range spec.Containers {
		ports := map[string]bool{}
		for _, p := range c.Ports {
			ports[p.Name] = true
		}
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				t.Errorf("%s container %s: mounts undeclared volume %s", w, c.Name, m.Name)
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil && e.ValueFrom.ResourceFieldRef.ContainerName != "" && !containers[e.ValueFrom.ResourceFieldRef.ContainerName] {
				t.Errorf("%s container %s: env %s refers to container %q", w, c.Name, e.Name, e.ValueFrom.ResourceFieldRef.ContainerName)
			}
		}
		for _, probe := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
			if probe != nil && probe.HTTPGet != nil && probe.HTTPGet.Port.StrVal != "" && !ports[probe.HTTPGet.Port.StrVal] {
				t.Errorf("%s container %s: probe on undeclared port %q", w, c.Name, probe.HTTPGet.Port.StrVal)
			}
		}
	}
}

// wide reports a peer that names no particular pods: everything (an
// 0.0.0.0/0 block), every pod of every or of its namespace (empty
// selectors).
func wide(peer networkingv1.NetworkPolicyPeer) bool {
	if peer.IPBlock != nil {
		return peer.IPBlock.CIDR == "0.0.0.0/0" || peer.IPBlock.CIDR == "::/0"
	}
	emptySel := func(s *metav1.LabelSelector) bool {
		return s == nil || (len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0)
	}
	return emptySel(peer.PodSelector)
}
