package normalize

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/crowsnest-siem/crowsnest/schemas"
)

// Lines normalizes JSON lines read from r as records of source and writes one
// event per line to w, each exactly as the Elasticsearch sink indexes it
// (schemas.Event.AppendJSON) followed by '\n'. It backs
// `crowsnest normalize --source SOURCE [FILE]`.
//
// A line that cannot become an event — malformed, rejected, longer than
// max_record_bytes — is counted in bad and reported to onError (if not nil)
// with its 1-based line number; the lines after it are still processed. A
// line holding a batch (see [Splitter]) yields one event per part. Blank lines
// are skipped. The returned error is a read or write failure or ctx's error,
// never a bad line.
func Lines(ctx context.Context, r io.Reader, n *Normalizer, source string, w io.Writer, onError func(line int, err error)) (ok, bad int, err error) {
	if onError == nil {
		onError = func(int, error) {}
	}
	br := bufio.NewReaderSize(r, 64*1024)
	bw := bufio.NewWriterSize(w, 64*1024)
	var (
		ev   schemas.Event
		out  []byte
		line []byte
		rec  = Record{Source: source}
	)
	for lineNo := 1; ; lineNo++ {
		if err := ctx.Err(); err != nil {
			return ok, bad, errors.Join(err, bw.Flush())
		}
		var tooLong bool
		var readErr error
		line, tooLong, readErr = readLine(br, line[:0], n.maxRecord)
		if readErr != nil && !errors.Is(readErr, io.EOF) {
			return ok, bad, errors.Join(fmt.Errorf("read line %d: %w", lineNo, readErr), bw.Flush())
		}
		trimmed := bytes.TrimSpace(line)
		switch {
		case tooLong:
			bad++
			onError(lineNo, &RejectError{Reason: ReasonTooLarge, Detail: fmt.Sprintf("line longer than max_record_bytes %d", n.maxRecord)})
		case len(trimmed) > 0:
			rec.Data = trimmed
			var writeErr error
			recErr := n.NormalizeEach(&rec, &ev, func(ev *schemas.Event, err error) error {
				if err != nil {
					bad++
					onError(lineNo, err)
					return nil
				}
				ok++
				out = append(ev.AppendJSON(out[:0]), '\n')
				if _, werr := bw.Write(out); werr != nil {
					writeErr = fmt.Errorf("write event of line %d: %w", lineNo, werr)
					return writeErr
				}
				return nil
			})
			if writeErr != nil {
				return ok, bad, writeErr
			}
			if recErr != nil {
				bad++
				onError(lineNo, recErr)
			}
		}
		if readErr != nil { // io.EOF
			if err := bw.Flush(); err != nil {
				return ok, bad, fmt.Errorf("write: %w", err)
			}
			return ok, bad, nil
		}
	}
}

// readLine appends the next line (without its '\n') to buf. A line longer
// than max is consumed up to its end but not kept: tooLong reports it, and
// memory stays bounded by max whatever the input.
func readLine(br *bufio.Reader, buf []byte, max int) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(chunk) > max+2 { // room for "\r\n"
				tooLong = true
				buf = buf[:0]
			} else {
				buf = append(buf, chunk...)
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err != nil:
			if errors.Is(err, io.EOF) && len(buf) == 0 && !tooLong && len(chunk) == 0 {
				return buf, false, io.EOF
			}
			return buf, tooLong, err
		}
		return buf, tooLong, nil
	}
}
