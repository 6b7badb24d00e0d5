// Package hardening holds the invariants every crowsnest pod meets, shared by
// the two places that check deployment manifests: the Helm chart's rendered
// output (deploy/helm/chartcheck) and the plain manifests under deploy/k8s
// (collectors/internal/deploycheck). It depends on k8s.io/api only, so the
// collectors module can use it without pulling in Helm.
package hardening

import (
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// WritableHostPrefix is the only host path a crowsnest pod may mount
// writable: the node collector's checkpoints and spool.
const WritableHostPrefix = "/var/lib/crowsnest"

// PodSpec reports every way spec breaks the invariants, joined; nil when it
// meets them all. name prefixes each message.
//
// The invariants: no host namespace (PID, IPC, network) shared; no service
// account token mounted; every container and init container runs as
// non-root with a read-only root filesystem, no privilege escalation, not
// privileged, all capabilities dropped and none added, seccomp RuntimeDefault
// (its own or the pod's), cpu and memory requests and limits; host paths are
// mounted read-only except under WritableHostPrefix.
func PodSpec(name string, spec *corev1.PodSpec) error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
	}
	if spec.HostPID || spec.HostIPC || spec.HostNetwork {
		bad("host namespaces shared (hostPID %t, hostIPC %t, hostNetwork %t)", spec.HostPID, spec.HostIPC, spec.HostNetwork)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		bad("automountServiceAccountToken must be false")
	}
	if psc := spec.SecurityContext; psc != nil && psc.RunAsUser != nil && *psc.RunAsUser == 0 {
		bad("pod runAsUser is 0 (root)")
	}
	all := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	if len(all) == 0 {
		bad("no containers")
	}
	for _, c := range all {
		if err := container(spec, c); err != nil {
			bad("container %s: %w", c.Name, err)
		}
	}
	return errors.Join(errs...)
}

func container(spec *corev1.PodSpec, c corev1.Container) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	psc := spec.SecurityContext
	sc := c.SecurityContext
	if sc == nil {
		return errors.New("no securityContext")
	}
	nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) ||
		(sc.RunAsNonRoot == nil && psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot)
	if !nonRoot || (sc.RunAsUser != nil && *sc.RunAsUser == 0) {
		bad("must run as non-root")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		bad("readOnlyRootFilesystem must be true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		bad("allowPrivilegeEscalation must be false")
	}
	if sc.Privileged != nil && *sc.Privileged {
		bad("privileged")
	}
	if sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) > 0 {
		bad("capabilities must drop ALL and add none")
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil && psc != nil {
		seccomp = psc.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		bad("seccompProfile must be RuntimeDefault")
	}
	if c.Resources.Limits.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		bad("cpu and memory limits must be set")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		bad("cpu and memory requests must be set")
	}
	for _, m := range c.VolumeMounts {
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.HostPath != nil && !m.ReadOnly && !writableHostPath(v.HostPath.Path) {
				bad("host path %s mounted writable", v.HostPath.Path)
			}
		}
	}
	return errors.Join(errs...)
}

// writableHostPath reports whether p is WritableHostPrefix or under it
// (not merely sharing its spelling, as /var/lib/crowsnest-other would).
func writableHostPath(p string) bool {
	return p == WritableHostPrefix || strings.HasPrefix(p, WritableHostPrefix+"/")
}
