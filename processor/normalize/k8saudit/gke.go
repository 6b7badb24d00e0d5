package k8saudit

import (
	"strings"

	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// mapGKE maps a GKE Cloud Audit Logs entry (logName …cloudaudit.googleapis.com,
// protoPayload an AuditLog whose methodName is io.k8s.*). GKE keeps no audit
// id or stage: insertId stands for the id, as Elastic's integration has it.
func (m *Mapper) mapGKE(r *record, ev *schemas.Event) error {
	var method, resourceName, service, principal, callerIP, agent, statusMsg string
	var statusCode int64
	var statusSet bool
	var authz, request, response gjson.Result
	r.protoPayload.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "methodName":
			method = v.Str
		case "resourceName":
			resourceName = v.Str
		case "serviceName":
			service = v.Str
		case "authenticationInfo":
			principal = v.Get("principalEmail").Str
		case "requestMetadata":
			v.ForEach(func(k, v gjson.Result) bool {
				switch k.Str {
				case "callerIp":
					callerIP = v.Str
				case "callerSuppliedUserAgent":
					agent = v.Str
				}
				return true
			})
		case "status":
			v.ForEach(func(k, v gjson.Result) bool {
				switch k.Str {
				case "code":
					statusCode, statusSet = v.Int(), v.Type == gjson.Number
				case "message":
					statusMsg = v.Str
				}
				return true
			})
		case "authorizationInfo":
			authz = v
		case "request":
			request = v
		case "response":
			response = v
		}
		return true
	})
	verb, ok := strings.CutPrefix(method, "io.k8s.")
	if !ok && service != "k8s.io" {
		return normalize.Reject(reasonNotAudit, "protoPayload.methodName %.64q is not a Kubernetes (io.k8s.*) method", method)
	}
	if i := strings.LastIndexByte(verb, '.'); i >= 0 {
		verb = verb[i+1:]
	}
	if r.insertID == "" {
		return normalize.Reject(normalize.ReasonMissingField, "insertId")
	}
	trunc := &ev.Crowsnest.Truncated
	a := &ev.Kubernetes.Audit
	a.AuditID, a.Verb = r.insertID, verb
	ev.Event.ID = r.insertID
	ev.Event.Kind = "event"
	ev.Event.Action = verb
	ev.Timestamp = normalize.ParseTime(r.timestamp)

	if principal != "" {
		a.User.Username = principal
		ev.User.Name = principal
		ev.User.Domain = serviceAccountNamespace(principal)
		ev.Related.User = m.lim.AppendUnique(ev.Related.User, principal, trunc)
	}
	if callerIP != "" {
		a.SourceIPs = m.lim.Append(a.SourceIPs, callerIP, trunc)
		ev.Source.IP = callerIP
		ev.Related.IP = m.lim.AppendUnique(ev.Related.IP, callerIP, trunc)
	}
	ev.UserAgent.Original = agent

	o := &a.ObjectRef
	group, version, hasObject := parseResourceName(resourceName, o)
	o.APIGroup, o.APIVersion = group, version
	orc := &ev.Orchestrator
	orc.Type = "kubernetes"
	orc.Namespace = o.Namespace
	orc.Resource.Type = o.Resource
	orc.Resource.Name = o.Name
	orc.Cluster.Name = r.resource.Get("labels.cluster_name").Str
	if !hasObject && resourceName != "" && !strings.Contains(resourceName, "/") {
		ev.URL.Original = "/" + resourceName // a non-resource URL: readyz, version
	}

	// GKE reports a google.rpc.Code; the audit schema an HTTP status.
	if statusSet {
		a.ResponseStatus.Code = int32(httpStatus(statusCode))
		a.ResponseStatus.Reason = statusMsg
	} else {
		a.ResponseStatus.Code = 200 // an entry without status succeeded
	}

	decision := ""
	r.labels.ForEach(func(k, v gjson.Result) bool {
		if v.Type != gjson.String || v.Str == "" {
			return true
		}
		switch k.Str {
		case "authorization.k8s.io/decision":
			decision = v.Str
		case "authorization.k8s.io/reason":
			ev.Event.Reason = v.Str
		}
		a.Annotations = m.lim.Put(a.Annotations, annotationKey(k.Str), v.Str, trunc)
		return true
	})
	if decision == "" {
		authz.ForEach(func(_, v gjson.Result) bool {
			switch v.Get("granted").Type {
			case gjson.True:
				decision = "allow"
			case gjson.False:
				decision = "forbid"
				return false
			}
			return true
		})
	}

	if request.IsObject() {
		a.RequestObject = m.lim.KeepJSON(a.RequestObject, request.Raw, trunc)
		m.podSpec(request, o.Resource, o.Subresource, ev)
	}
	if response.IsObject() {
		a.ResponseObject = m.lim.KeepJSON(a.ResponseObject, response.Raw, trunc)
	}

	code := int(a.ResponseStatus.Code)
	outcome(ev, code, true)
	categorize(ev, verb, o.Resource, o.Subresource, hasObject, decision, code)
	setOCSF(ev, verb)
	return nil
}

// parseResourceName reads GKE's resourceName:
//
//	core/v1/namespaces/default/pods/nginx[/exec]
//	rbac.authorization.k8s.io/v1/clusterrolebindings/admin
//	core/v1/namespaces/kube-system            (a namespace itself)
//	readyz                                    (a non-resource URL)
//
// It fills the object reference and reports whether it names a resource.
func parseResourceName(s string, o *schemas.KubernetesAuditObjectRef) (group, version string, ok bool) {
	group, rest, found := strings.Cut(s, "/")
	if !found {
		return "", "", false
	}
	version, rest, found = strings.Cut(rest, "/")
	if !found || len(version) < 2 || version[0] != 'v' || version[1] < '0' || version[1] > '9' {
		return "", "", false
	}
	if group == "core" {
		group = ""
	}
	seg, rest, _ := strings.Cut(rest, "/")
	if seg == "namespaces" {
		ns, after, more := strings.Cut(rest, "/")
		if !more {
			o.Resource, o.Name = "namespaces", ns
			return group, version, ns != ""
		}
		o.Namespace = ns
		seg, rest, _ = strings.Cut(after, "/")
	}
	o.Resource = seg
	o.Name, o.Subresource, _ = strings.Cut(rest, "/")
	return group, version, seg != ""
}

// httpStatus maps a google.rpc.Code to the HTTP status the API server would
// have answered (the mapping of google/rpc/code.proto).
func httpStatus(code int64) int {
	switch code {
	case 0:
		return 200 // OK
	case 1:
		return 499 // CANCELLED
	case 3, 9, 11:
		return 400 // INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE
	case 4:
		return 504 // DEADLINE_EXCEEDED
	case 5:
		return 404 // NOT_FOUND
	case 6, 10:
		return 409 // ALREADY_EXISTS, ABORTED
	case 7:
		return 403 // PERMISSION_DENIED
	case 8:
		return 429 // RESOURCE_EXHAUSTED
	case 12:
		return 501 // UNIMPLEMENTED
	case 14:
		return 503 // UNAVAILABLE
	case 16:
		return 401 // UNAUTHENTICATED
	}
	return 500 // UNKNOWN, INTERNAL, DATA_LOSS and anything else
}
