package detect

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// maxLine bounds one input line; longer lines are reported, not read whole.
const maxLine = 64 << 20

// LinesResult counts what Lines did.
type LinesResult struct {
	Records, Events, Rejected, Alerts int
}

// Lines reads raw records of source, one JSON line each, normalizes them,
// runs the engine and writes each alert as one JSON line
// (schemas.Alert.AppendJSON). It backs `crowsnest detect`. A record that
// cannot be normalized is counted and reported to onError with its 1-based
// line number; the lines after it are still processed. The error is a read
// or write failure or ctx's error.
func Lines(ctx context.Context, r io.Reader, norm *normalize.Normalizer, source string, eng *Engine, w io.Writer, onError func(line int, err error)) (LinesResult, error) {
	var res LinesResult
	if onError == nil {
		onError = func(int, error) {}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	bw := bufio.NewWriterSize(w, 64<<10)
	var (
		ev  schemas.Event
		out []byte
		rec = normalize.Record{Source: source}
	)
	emit := func(a *schemas.Alert) error {
		res.Alerts++
		out = append(a.AppendJSON(out[:0]), '\n')
		if _, err := bw.Write(out); err != nil {
			return fmt.Errorf("write alert: %w", err)
		}
		return nil
	}
	for line := 1; sc.Scan(); line++ {
		if err := ctx.Err(); err != nil {
			return res, errors.Join(err, bw.Flush())
		}
		data := bytes.TrimSpace(sc.Bytes())
		if len(data) == 0 {
			continue
		}
		res.Records++
		rec.Data = data
		var werr error
		err := norm.NormalizeEach(&rec, &ev, func(e *schemas.Event, err error) error {
			if err != nil {
				res.Rejected++
				onError(line, err)
				return nil
			}
			res.Events++
			if err := eng.Process(e, emit); err != nil {
				werr = err
				return err
			}
			return nil
		})
		if werr != nil {
			return res, werr
		}
		if err != nil {
			res.Rejected++
			onError(line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return res, errors.Join(fmt.Errorf("read: %w", err), bw.Flush())
	}
	if err := bw.Flush(); err != nil {
		return res, fmt.Errorf("write: %w", err)
	}
	return res, nil
}
