package hardening

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func ptr[T any](v T) *T { return &v }

// good is a pod that meets every invariant; each case breaks one.
func good() *corev1.PodSpec {
	return &corev1.PodSpec{
		AutomountServiceAccountToken: ptr(false),
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   ptr(true),
			RunAsUser:      ptr(int64(65532)),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{{
			Name: "c",
			SecurityContext: &corev1.SecurityContext{
				ReadOnlyRootFilesystem:   ptr(true),
				AllowPrivilegeEscalation: ptr(false),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("64Mi")},
			},
			VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "logs", MountPath: "/logs", ReadOnly: true}},
		}},
		Volumes: []corev1.Volume{
			{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/crowsnest"}}},
			{Name: "logs", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/log"}}},
		},
	}
}

func TestPodSpec(t *testing.T) {
	if err := PodSpec("good", good()); err != nil {
		t.Fatalf("a hardened pod is refused: %v", err)
	}
	cases := []struct {
		name    string
		breakIt func(*corev1.PodSpec)
		want    string
	}{
		{"host PID", func(s *corev1.PodSpec) { s.HostPID = true }, "host namespaces"},
		{"host network", func(s *corev1.PodSpec) { s.HostNetwork = true }, "host namespaces"},
		{"token mounted by default", func(s *corev1.PodSpec) { s.AutomountServiceAccountToken = nil }, "automountServiceAccountToken"},
		{"token mounted", func(s *corev1.PodSpec) { s.AutomountServiceAccountToken = ptr(true) }, "automountServiceAccountToken"},
		{"pod as root", func(s *corev1.PodSpec) { s.SecurityContext.RunAsUser = ptr(int64(0)) }, "root"},
		{"no security context", func(s *corev1.PodSpec) { s.Containers[0].SecurityContext = nil }, "no securityContext"},
		{"non-root not required", func(s *corev1.PodSpec) { s.SecurityContext.RunAsNonRoot = nil }, "non-root"},
		{"container as root", func(s *corev1.PodSpec) { s.Containers[0].SecurityContext.RunAsUser = ptr(int64(0)) }, "non-root"},
		{"writable root", func(s *corev1.PodSpec) { s.Containers[0].SecurityContext.ReadOnlyRootFilesystem = ptr(false) }, "readOnlyRootFilesystem"},
		{"escalation", func(s *corev1.PodSpec) { s.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil }, "allowPrivilegeEscalation"},
		{"privileged", func(s *corev1.PodSpec) { s.Containers[0].SecurityContext.Privileged = ptr(true) }, "privileged"},
		{"capability added", func(s *corev1.PodSpec) {
			s.Containers[0].SecurityContext.Capabilities.Add = []corev1.Capability{"DAC_READ_SEARCH"}
		}, "capabilities"},
		{"capabilities kept", func(s *corev1.PodSpec) { s.Containers[0].SecurityContext.Capabilities = nil }, "capabilities"},
		{"no seccomp", func(s *corev1.PodSpec) { s.SecurityContext.SeccompProfile = nil }, "seccompProfile"},
		{"unconfined seccomp", func(s *corev1.PodSpec) {
			s.Containers[0].SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
		}, "seccompProfile"},
		{"no memory limit", func(s *corev1.PodSpec) { delete(s.Containers[0].Resources.Limits, corev1.ResourceMemory) }, "limits"},
		{"no cpu request", func(s *corev1.PodSpec) { delete(s.Containers[0].Resources.Requests, corev1.ResourceCPU) }, "requests"},
		{"writable host log", func(s *corev1.PodSpec) { s.Containers[0].VolumeMounts[1].ReadOnly = false }, "/var/log mounted writable"},
		{"writable look-alike host path", func(s *corev1.PodSpec) { s.Volumes[0].HostPath.Path = "/var/lib/crowsnest-other" }, "mounted writable"},
		{"init container unhardened", func(s *corev1.PodSpec) { s.InitContainers = []corev1.Container{{Name: "init"}} }, "container init: no securityContext"},
		{"no containers", func(s *corev1.PodSpec) { s.Containers = nil }, "no containers"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := good()
			tc.breakIt(s)
			err := PodSpec("pod", s)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "pod: ") {
				t.Errorf("error %q does not name %q", err, tc.want)
			}
		})
	}
}
