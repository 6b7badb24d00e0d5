package normalize

import (
	"errors"
	"fmt"
)

// A Reason is the stable code of a rejection: a bounded metric label and the
// Crowsnest-Error header of the dead-letter record. Never derive one from
// input.
type Reason string

// Reasons every source shares. A mapper reports a record of the wrong shape
// with [NotSource] (not_k8s_audit, not_falco, …).
const (
	ReasonInvalidJSON     Reason = "invalid_json"
	ReasonTooLarge        Reason = "too_large"
	ReasonTooDeep         Reason = "too_deep"
	ReasonInvalidUTF8     Reason = "invalid_utf8"
	ReasonMissingField    Reason = "missing_field"
	ReasonUnknownSource   Reason = "unknown_source"
	ReasonMultipleRecords Reason = "multiple_records"
	// ReasonMappingFailed marks a mapper error that was not a RejectError
	// (a mapper bug); the record still goes to the dead-letter stream.
	ReasonMappingFailed Reason = "mapping_failed"
)

// NotSource is the reason for a record that is valid JSON but not what the
// source produces: "not_" + source, e.g. not_k8s_audit for a Falco alert sent
// to the Kubernetes audit mapper.
func NotSource(source string) Reason { return Reason("not_" + source) }

// A RejectError says why a record cannot become an event. It is permanent:
// retrying the same bytes gives the same answer, so the record goes to the
// dead-letter stream with Reason.
type RejectError struct {
	Reason Reason
	Detail string // human-readable, already including Err's text when Err is set
	Err    error  // underlying cause, if any
}

func (e *RejectError) Error() string {
	switch {
	case e.Detail != "":
		return string(e.Reason) + ": " + e.Detail
	case e.Err != nil:
		return string(e.Reason) + ": " + e.Err.Error()
	}
	return string(e.Reason)
}

func (e *RejectError) Unwrap() error { return e.Err }

// Reject returns a *RejectError with a formatted detail. A %w verb in format
// wraps its operand as Err.
func Reject(reason Reason, format string, args ...any) *RejectError {
	err := fmt.Errorf(format, args...)
	return &RejectError{Reason: reason, Detail: err.Error(), Err: errors.Unwrap(err)}
}

// RejectReason returns the reason of the first RejectError in err's chain.
func RejectReason(err error) (Reason, bool) {
	var re *RejectError
	if errors.As(err, &re) {
		return re.Reason, true
	}
	return "", false
}
