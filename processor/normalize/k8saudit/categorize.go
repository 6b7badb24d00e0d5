package k8saudit

import "github.com/crowsnest-siem/crowsnest/schemas"

// ECS categorization of an audit event. Elastic's integration sets none; the
// table is ours, documented in DIFFERENCES.md and kept within ECS's allowed
// category/type pairs, except allowed/denied which we add to every category
// (the authorization decision is what most rules ask first).
//
//	request                                   category        type (by verb)
//	no objectRef (/healthz, /version, …)      web             access
//	pods/exec, pods/attach                    process         start
//	pods/portforward, */proxy                 network         connection
//	RBAC, service accounts, CSRs, tokens      iam             create→creation, delete*→deletion,
//	                                                          update/patch→change, other→info
//	token/access reviews (a question asked)   iam             info
//	any other resource                        configuration   create→creation, delete*→deletion,
//	                                                          update/patch→change,
//	                                                          get/list/watch→access, other→info
//	then: decision annotation allow → +allowed; forbid (or HTTP 401/403) → +denied
func categorize(ev *schemas.Event, verb, resource, subresource string, hasObject bool, decision string, code int) {
	f := &ev.Event
	switch {
	case !hasObject || resource == "":
		f.Category = append(f.Category, "web")
		f.Type = append(f.Type, "access")
	case resource == "pods" && (subresource == "exec" || subresource == "attach"):
		f.Category = append(f.Category, "process")
		f.Type = append(f.Type, "start")
	case subresource == "portforward" || subresource == "proxy":
		f.Category = append(f.Category, "network")
		f.Type = append(f.Type, "connection")
	case isReview(resource):
		f.Category = append(f.Category, "iam")
		f.Type = append(f.Type, "info")
	case isIAM(resource):
		f.Category = append(f.Category, "iam")
		f.Type = append(f.Type, verbType(verb, "info"))
	default:
		f.Category = append(f.Category, "configuration")
		f.Type = append(f.Type, verbType(verb, "access"))
	}
	switch {
	case decision == "allow":
		f.Type = append(f.Type, "allowed")
	case decision == "forbid" || code == 401 || code == 403:
		f.Type = append(f.Type, "denied")
	}
}

// verbType maps a verb to the ECS type; reads get read.
func verbType(verb, read string) string {
	switch verb {
	case "create":
		return "creation"
	case "delete", "deletecollection":
		return "deletion"
	case "update", "patch":
		return "change"
	case "get", "list", "watch":
		return read
	}
	return "info"
}

func isIAM(resource string) bool {
	switch resource {
	case "roles", "rolebindings", "clusterroles", "clusterrolebindings",
		"serviceaccounts", "users", "groups", "certificatesigningrequests":
		return true
	}
	return false
}

func isReview(resource string) bool {
	switch resource {
	case "tokenreviews", "subjectaccessreviews", "selfsubjectaccessreviews",
		"localsubjectaccessreviews", "selfsubjectrulesreviews", "selfsubjectreviews":
		return true
	}
	return false
}

// setOCSF: API Activity 6003; activity by verb: create 1, get/list/watch 2,
// update/patch 3, delete/deletecollection 4, anything else 99 (Other).
func setOCSF(ev *schemas.Event, verb string) {
	o := &ev.OCSF
	o.ClassUID = ocsfClassAPIActivity
	o.CategoryUID = ocsfCategoryApp
	o.SeverityID = ocsfSeverityInfo
	switch verb {
	case "create":
		o.ActivityID = 1
	case "get", "list", "watch":
		o.ActivityID = 2
	case "update", "patch":
		o.ActivityID = 3
	case "delete", "deletecollection":
		o.ActivityID = 4
	default:
		o.ActivityID = 99
	}
}
