package sink

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Permanent marks err as permanent: retrying the same record cannot succeed
// (the document is malformed, the store rejects it by mapping). The Runner
// dead-letters the records a permanent error applies to. Permanent(nil) is
// nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with
// Permanent. Every other error is retryable.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return "permanent: " + e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// BatchError says which records of a batch failed. WriteBatch returns one when
// part of the batch was written; every index it does not name counts as
// written. Build it with NewBatchError().Failed(i, err).
type BatchError struct {
	failed []ItemError
}

// ItemError is the failure of the record at Index in the batch given to
// WriteBatch.
type ItemError struct {
	Index int
	Err   error
}

// NewBatchError returns an empty BatchError; add failures with Failed.
func NewBatchError() *BatchError { return &BatchError{} }

// Failed records that the record at index i failed with err (wrap err with
// Permanent if retrying cannot help) and returns e, so calls chain. A nil err
// is recorded as a retryable failure.
func (e *BatchError) Failed(i int, err error) *BatchError {
	if err == nil {
		err = errors.New("failed without an error")
	}
	e.failed = append(e.failed, ItemError{Index: i, Err: err})
	return e
}

// Len is the number of failures recorded.
func (e *BatchError) Len() int { return len(e.failed) }

// Items returns the failures in the order they were recorded.
func (e *BatchError) Items() []ItemError { return e.failed }

// Error summarises the failures: how many, and the first one.
func (e *BatchError) Error() string {
	switch len(e.failed) {
	case 0:
		return "batch error with no failed record"
	case 1:
		return fmt.Sprintf("record %d: %v", e.failed[0].Index, e.failed[0].Err)
	}
	var b strings.Builder
	b.WriteString(strconv.Itoa(len(e.failed)))
	b.WriteString(" records failed; first: record ")
	b.WriteString(strconv.Itoa(e.failed[0].Index))
	b.WriteString(": ")
	b.WriteString(e.failed[0].Err.Error())
	return b.String()
}

// Unwrap returns the individual errors, so errors.Is and errors.As see them.
func (e *BatchError) Unwrap() []error {
	errs := make([]error, len(e.failed))
	for i, f := range e.failed {
		errs[i] = f.Err
	}
	return errs
}
