package replay

import (
	"errors"
	"fmt"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/crowsnest-siem/crowsnest/bus/msgid"
)

// k8sAuditRewriter rewrites audit.k8s.io/v1 Events: a new auditID per
// (loop, original auditID), so the stages of one request still share it; the
// request and stage timestamps, and the creation time of any embedded object,
// shifted so that stageTimestamp is now. The message id is the natural one,
// msgid.K8sAudit(auditID, stage).
type k8sAuditRewriter struct{}

func (k8sAuditRewriter) timestamp(data []byte) (time.Time, error) {
	v := gjson.GetBytes(data, "stageTimestamp")
	if !v.Exists() {
		v = gjson.GetBytes(data, "requestReceivedTimestamp")
	}
	if v.Type != gjson.String {
		return time.Time{}, errors.New("kubernetes audit event without stageTimestamp or requestReceivedTimestamp")
	}
	return parseTime(v.Str)
}

func (k8sAuditRewriter) rewrite(s *sample, pos position, now time.Time) ([]byte, string, error) {
	res := gjson.GetManyBytes(s.data, "auditID", "stage")
	auditID, stage := res[0].String(), res[1].String()
	if auditID == "" || stage == "" {
		return nil, "", errors.New("kubernetes audit event without auditID or stage")
	}
	newID := deriveUUID(pos, auditID)
	data, err := sjson.SetBytes(s.data, "auditID", newID)
	if err != nil {
		return nil, "", fmt.Errorf("set auditID: %w", err)
	}
	data, err = shiftPaths(data, now.Sub(s.at),
		"requestReceivedTimestamp", "stageTimestamp",
		"requestObject.metadata.creationTimestamp", "responseObject.metadata.creationTimestamp")
	if err != nil {
		return nil, "", err
	}
	id, err := msgid.K8sAudit(newID, stage)
	if err != nil {
		return nil, "", err
	}
	return data, id, nil
}
