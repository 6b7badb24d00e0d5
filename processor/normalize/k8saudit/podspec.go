package k8saudit

import (
	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/schemas"
)

// podSpec finds the pod spec in a submitted object — a Pod, a workload's pod
// template, a CronJob's job template — and flattens what rules ask about into
// kubernetes.pod_spec.*. A patch body works too, as far as it carries the
// spec path. kind decides; without one (patches), the resource does.
func (m *Mapper) podSpec(obj gjson.Result, resource, subresource string, ev *schemas.Event) {
	var kind, typ string
	var spec, template gjson.Result
	obj.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "kind":
			kind = v.Str
		case "@type": // GKE request objects: "core.k8s.io/v1.Pod"
			typ = v.Str
		case "spec":
			spec = v
		case "template": // PodTemplate
			template = v
		}
		return true
	})
	if kind == "" && typ != "" {
		for i := len(typ) - 1; i >= 0; i-- {
			if typ[i] == '.' {
				kind = typ[i+1:]
				break
			}
		}
	}
	if kind == "" {
		kind = kindOfResource(resource, subresource)
	}
	switch kind {
	case "Pod":
	case "Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job", "ReplicationController":
		spec = spec.Get("template.spec")
	case "CronJob":
		spec = spec.Get("jobTemplate.spec.template.spec")
	case "PodTemplate":
		spec = template.Get("spec")
	default:
		return
	}
	if !spec.IsObject() {
		return
	}
	m.flatten(spec, ev)
}

func kindOfResource(resource, subresource string) string {
	switch resource {
	case "pods":
		if subresource == "" || subresource == "ephemeralcontainers" {
			return "Pod"
		}
	case "deployments":
		return "Deployment"
	case "daemonsets":
		return "DaemonSet"
	case "statefulsets":
		return "StatefulSet"
	case "replicasets":
		return "ReplicaSet"
	case "jobs":
		return "Job"
	case "replicationcontrollers":
		return "ReplicationController"
	case "cronjobs":
		return "CronJob"
	case "podtemplates":
		return "PodTemplate"
	}
	return ""
}

// triBool is a JSON boolean that may be absent.
type triBool struct{ set, val bool }

func readBool(v gjson.Result) triBool {
	switch v.Type {
	case gjson.True:
		return triBool{true, true}
	case gjson.False:
		return triBool{true, false}
	}
	return triBool{}
}

// securityContext is what a pod- or container-level securityContext says
// about root; containers inherit the pod's values they leave unset.
type securityContext struct {
	runAsUser    int64
	runAsUserSet bool
	runAsNonRoot triBool
}

func readSecurityContext(v gjson.Result) (sc securityContext, privileged, allowEscalation triBool, caps gjson.Result) {
	v.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "runAsUser":
			if v.Type == gjson.Number {
				sc.runAsUser, sc.runAsUserSet = v.Int(), true
			}
		case "runAsNonRoot":
			sc.runAsNonRoot = readBool(v)
		case "privileged":
			privileged = readBool(v)
		case "allowPrivilegeEscalation":
			allowEscalation = readBool(v)
		case "capabilities":
			caps = v.Get("add")
		}
		return true
	})
	return
}

// flatten reads a PodSpec. The booleans mean "some container may …": they
// are true when any container (init and ephemeral included) is privileged,
// may run as root (runAsUser 0, or no runAsUser and runAsNonRoot not true,
// after inheriting the pod's securityContext), or may escalate privileges
// (allowPrivilegeEscalation true or unset — Kubernetes' default — or the
// container is privileged or adds CAP_SYS_ADMIN). hostPID/hostNetwork/hostIPC
// are false when the spec leaves them unset.
func (m *Mapper) flatten(spec gjson.Result, ev *schemas.Event) {
	trunc := &ev.Crowsnest.Truncated
	ps := &ev.Kubernetes.PodSpec
	var hostPID, hostNetwork, hostIPC bool
	var podSC securityContext
	var containers [3]gjson.Result
	spec.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "hostPID":
			hostPID = v.Type == gjson.True
		case "hostNetwork":
			hostNetwork = v.Type == gjson.True
		case "hostIPC":
			hostIPC = v.Type == gjson.True
		case "securityContext":
			podSC, _, _, _ = readSecurityContext(v)
		case "volumes":
			v.ForEach(func(_, vol gjson.Result) bool {
				if p := vol.Get("hostPath.path"); p.Str != "" {
					ps.HostPaths = m.lim.AppendUnique(ps.HostPaths, p.Str, trunc)
				}
				return true
			})
		case "containers":
			containers[0] = v
		case "initContainers":
			containers[1] = v
		case "ephemeralContainers":
			containers[2] = v
		}
		return true
	})
	ps.HostPID, ps.HostNetwork, ps.HostIPC = boolPtr(hostPID), boolPtr(hostNetwork), boolPtr(hostIPC)

	var n int
	var privileged, runAsRoot, escalation bool
	for i, list := range containers {
		list.ForEach(func(_, c gjson.Result) bool {
			var image string
			var scRaw gjson.Result
			c.ForEach(func(k, v gjson.Result) bool {
				switch k.Str {
				case "image":
					image = v.Str
				case "securityContext":
					scRaw = v
				}
				return true
			})
			n++
			if i == 0 && ev.Container.Image.Name == "" {
				ev.Container.Image.Name = image
			}
			ps.Images = m.lim.AppendUnique(ps.Images, image, trunc)

			sc, priv, esc, caps := readSecurityContext(scRaw)
			if !sc.runAsUserSet {
				sc.runAsUser, sc.runAsUserSet = podSC.runAsUser, podSC.runAsUserSet
			}
			if !sc.runAsNonRoot.set {
				sc.runAsNonRoot = podSC.runAsNonRoot
			}
			sysAdmin := false
			caps.ForEach(func(_, cap gjson.Result) bool {
				if cap.Str == "" {
					return true
				}
				if cap.Str == "SYS_ADMIN" || cap.Str == "CAP_SYS_ADMIN" || cap.Str == "ALL" {
					sysAdmin = true
				}
				ps.AddedCapabilities = m.lim.AppendUnique(ps.AddedCapabilities, cap.Str, trunc)
				return true
			})
			isPriv := priv.set && priv.val
			privileged = privileged || isPriv
			runAsRoot = runAsRoot || (sc.runAsUserSet && sc.runAsUser == 0) ||
				(!sc.runAsUserSet && !(sc.runAsNonRoot.set && sc.runAsNonRoot.val))
			escalation = escalation || !esc.set || esc.val || isPriv || sysAdmin
			return true
		})
	}
	if n > 0 {
		ps.Privileged, ps.RunAsRoot, ps.AllowPrivilegeEscalation = boolPtr(privileged), boolPtr(runAsRoot), boolPtr(escalation)
	}
}

func boolPtr(b bool) *bool { return &b }
