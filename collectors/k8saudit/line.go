package k8saudit

import (
	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/bus/msgid"
)

// EventID checks that event is one audit.k8s.io Event (a line of the log
// backend, an item of the webhook backend's EventList) and returns its
// message id, msgid.K8sAudit(auditID, stage); or, when it is not one, why
// (reject). Both the file tail and the webhook use it, so an event has the
// same id whichever way it arrives.
func EventID(event []byte) (id, reject string) { return parseLine(event) }

// parseLine checks that line is an audit event and returns its message id,
// msgid.K8sAudit(auditID, stage); or, when it is not one, why (reject).
// It reads only the fields that make the identity.
func parseLine(line []byte) (id, reject string) {
	if !gjson.ValidBytes(line) {
		return "", "not valid JSON"
	}
	root := gjson.ParseBytes(line)
	if !root.IsObject() {
		return "", "not a JSON object"
	}
	r := gjson.GetManyBytes(line, "kind", "auditID", "stage")
	kind, auditID, stage := r[0], r[1], r[2]
	if kind.Exists() && kind.Str != "Event" {
		return "", "not an audit event: kind " + quote(kind.Raw)
	}
	if auditID.Type != gjson.String || auditID.Str == "" {
		return "", "not an audit event: no auditID"
	}
	if stage.Type != gjson.String || stage.Str == "" {
		return "", "not an audit event: no stage"
	}
	id, err := msgid.K8sAudit(auditID.Str, stage.Str)
	if err != nil {
		return "", err.Error()
	}
	return id, ""
}

// quote caps a raw JSON value for a reason line.
func quote(raw string) string {
	const limit = 64
	if len(raw) > limit {
		return raw[:limit] + "…"
	}
	return raw
}
