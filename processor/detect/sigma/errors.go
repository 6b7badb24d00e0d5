package sigma

import "fmt"

// UnsupportedError says a rule uses a construct crowsnest cannot evaluate
// exactly as the specification means it; the rule is not loaded. Construct
// is a short stable name (modifier:windash, field:LogonId, regex,
// logsource, …) for reports; Reason says why.
type UnsupportedError struct {
	Construct string
	Reason    string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("unsupported %s: %s", e.Construct, e.Reason)
}

func unsupported(construct, format string, args ...any) error {
	return &UnsupportedError{Construct: construct, Reason: fmt.Sprintf(format, args...)}
}
