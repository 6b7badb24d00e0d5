package detect

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

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
//
// A file is replayed on event time alone: Lines turns the engine's
// watermark off (allowed_lateness does not apply), so what fires depends on
// the events' times, not on how fast they are read. A correlation match
// older than its correlation's newest match minus the timespan is still
// too late for any window. A correlation judged when its window closes (lt,
// lte, eq, neq) is judged when the file's newest event time passes the
// window's end, and at the end of the input for the windows still open.
func Lines(ctx context.Context, r io.Reader, norm *normalize.Normalizer, source string, eng *Engine, w io.Writer, onError func(line int, err error)) (LinesResult, error) {
	eng.replay.Store(true)
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
			if err := eng.Process(ctx, e, emit); err != nil {
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
	if err := eng.endOfInput(ctx, emit); err != nil {
		return res, errors.Join(err, bw.Flush())
	}
	if err := bw.Flush(); err != nil {
		return res, fmt.Errorf("write: %w", err)
	}
	return res, nil
}

// Input is one file of raw records of one source.
type Input struct {
	Source string
	Name   string
	R      io.Reader
}

// maxMergedRecords bounds what MergeLines holds in memory.
const maxMergedRecords = 1_000_000

// MergeLines is Lines over several inputs of different sources: it reads
// them all, orders the records by event time (stable, so equal times keep
// input order) and then normalizes and runs the engine, so correlations
// across sources (an exec in the audit log, a connection seen by Tetragon)
// see the events as they happened. It holds every record in memory, at
// most 1 000 000. onError gets the input's name and the line. Like Lines,
// it replays on event time alone.
func MergeLines(ctx context.Context, inputs []Input, norm *normalize.Normalizer, eng *Engine, w io.Writer, onError func(name string, line int, err error)) (LinesResult, error) {
	eng.replay.Store(true)
	var res LinesResult
	if onError == nil {
		onError = func(string, int, error) {}
	}
	type record struct {
		at     time.Time
		source string
		data   []byte
	}
	var records []record
	var ev schemas.Event
	for _, in := range inputs {
		sc := bufio.NewScanner(in.R)
		sc.Buffer(make([]byte, 0, 64<<10), maxLine)
		for line := 1; sc.Scan(); line++ {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			data := bytes.TrimSpace(sc.Bytes())
			if len(data) == 0 {
				continue
			}
			res.Records++
			if len(records) >= maxMergedRecords {
				return res, fmt.Errorf("more than %d records to merge: run the inputs separately", maxMergedRecords)
			}
			// A first pass finds the record's event time and reports
			// rejections; the record is normalized again in time order.
			r := record{source: in.Source, data: bytes.Clone(data)}
			ok := false
			rec := normalize.Record{Source: in.Source, Data: r.data}
			err := norm.NormalizeEach(&rec, &ev, func(e *schemas.Event, err error) error {
				if err != nil {
					res.Rejected++
					onError(in.Name, line, err)
					return nil
				}
				if !ok || e.Timestamp.Before(r.at) {
					r.at = e.Timestamp
				}
				ok = true
				return nil
			})
			if err != nil {
				res.Rejected++
				onError(in.Name, line, err)
			}
			if ok {
				records = append(records, r)
			}
		}
		if err := sc.Err(); err != nil {
			return res, fmt.Errorf("read %s: %w", in.Name, err)
		}
	}
	slices.SortStableFunc(records, func(a, b record) int { return a.at.Compare(b.at) })
	bw := bufio.NewWriterSize(w, 64<<10)
	var out []byte
	emit := func(a *schemas.Alert) error {
		res.Alerts++
		out = append(a.AppendJSON(out[:0]), '\n')
		if _, err := bw.Write(out); err != nil {
			return fmt.Errorf("write alert: %w", err)
		}
		return nil
	}
	for _, r := range records {
		rec := normalize.Record{Source: r.source, Data: r.data}
		err := norm.NormalizeEach(&rec, &ev, func(e *schemas.Event, err error) error {
			if err != nil {
				return nil // reported in the first pass
			}
			res.Events++
			return eng.Process(ctx, e, emit)
		})
		var re *normalize.RejectError
		if err != nil && !errors.As(err, &re) {
			return res, err
		}
	}
	if err := eng.endOfInput(ctx, emit); err != nil {
		return res, errors.Join(err, bw.Flush())
	}
	if err := bw.Flush(); err != nil {
		return res, fmt.Errorf("write: %w", err)
	}
	return res, nil
}
