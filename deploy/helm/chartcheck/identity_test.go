package chartcheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestNodeCollectorIdentityIsTheNode: the node DaemonSet's collector is
// named after its node (spec.nodeName through the downward API, with
// collectors.publish.collector_id_from_node), never after its pod: a pod
// name changes on every rollout, which would orphan its subjects and
// checkpoints and defeat a NATS identity bound to the node. Then the real
// CLI loads the rendered ConfigMap with exactly the container's environment
// (the node name a dotted one, as on EKS), so the variable names are keys
// the binary knows and the result validates.
func TestNodeCollectorIdentityIsTheNode(t *testing.T) {
	bin := buildCLI(t)
	const nodeName = "ip-10-0-0-1.ec2.internal"
	for name, values := range valueSets {
		t.Run(name, func(t *testing.T) {
			r := decode(t, render(t, values))
			var found bool
			for key, p := range r.pods {
				if p.component != "node-collector" {
					continue
				}
				found = true
				if !strings.HasPrefix(key, "DaemonSet/") {
					t.Errorf("%s: the node collector is not a DaemonSet", key)
				}
				c := container(t, key, p.spec, "collector")
				env := map[string]corev1.EnvVar{}
				for _, e := range c.Env {
					env[e.Name] = e
				}
				node := env["CROWSNEST_COLLECTORS__PUBLISH__NODE"]
				if node.ValueFrom == nil || node.ValueFrom.FieldRef == nil || node.ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
					t.Errorf("%s: CROWSNEST_COLLECTORS__PUBLISH__NODE = %+v, want the downward API's spec.nodeName", key, node)
				}
				if v := env["CROWSNEST_COLLECTORS__PUBLISH__COLLECTOR_ID_FROM_NODE"].Value; v != "true" {
					t.Errorf("%s: CROWSNEST_COLLECTORS__PUBLISH__COLLECTOR_ID_FROM_NODE = %q, want true", key, v)
				}
				for _, e := range c.Env {
					if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && strings.HasPrefix(e.ValueFrom.FieldRef.FieldPath, "metadata.") &&
						strings.HasPrefix(e.Name, "CROWSNEST_COLLECTORS__PUBLISH__") {
						t.Errorf("%s: %s from %s: the identity must be the node's, not the pod's", key, e.Name, e.ValueFrom.FieldRef.FieldPath)
					}
				}
				cm := configMapOf(t, key, p.spec)
				y, ok := r.configs[cm]
				if !ok {
					t.Fatalf("%s: ConfigMap %s not rendered", key, cm)
				}
				path := filepath.Join(t.TempDir(), "crowsnest.yaml")
				if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
					t.Fatal(err)
				}
				cmd := exec.Command(bin, "config", "check", path)
				cmd.Env = cleanEnv()
				for _, e := range c.Env {
					v := e.Value
					if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName" {
						v = nodeName
					}
					if e.ValueFrom == nil || v != "" {
						cmd.Env = append(cmd.Env, e.Name+"="+v)
					}
				}
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("%s: crowsnest config check with the pod's environment: %v\n%s", key, err, out)
				}
			}
			if !found && !strings.Contains(values, "nodeCollector: {enabled: false") {
				t.Errorf("no node collector rendered")
			}
		})
	}
}

func container(t *testing.T, key string, spec corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range spec.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("%s: no container %q", key, name)
	return corev1.Container{}
}

// configMapOf names the ConfigMap a pod mounts as its config volume.
func configMapOf(t *testing.T, key string, spec corev1.PodSpec) string {
	t.Helper()
	for _, v := range spec.Volumes {
		if v.Name == "config" && v.ConfigMap != nil {
			return v.ConfigMap.Name
		}
	}
	t.Fatalf("%s: no config volume from a ConfigMap", key)
	return ""
}
