package elasticsearch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/sinks/sink"
)

// maxIDBytes is Elasticsearch's limit on _id.
const maxIDBytes = 512

// bulkFilter trims the bulk reply to what the sink reads: about 25 bytes per
// written document instead of about 200.
var bulkFilter = []string{
	"errors",
	"items.*.status",
	"items.*.error.type",
	"items.*.error.reason",
	"items.*.error.caused_by.type",
	"items.*.error.caused_by.reason",
}

// ItemError is Elasticsearch's verdict on one document of a bulk request.
type ItemError struct {
	// Status is the item's HTTP status (400, 429, 503, ...).
	Status int
	// Type and Reason are Elasticsearch's error type and reason, with the
	// cause's when it gave one.
	Type, Reason string
}

func (e *ItemError) Error() string {
	return fmt.Sprintf("elasticsearch: %d %s: %s", e.Status, e.Type, e.Reason)
}

// Retryable reports whether writing the document again may succeed: 429
// (the node's queues are full) and 5xx, but also the statuses that mean the
// sink or the cluster is misconfigured, not the document wrong (401, 403, 404
// for a missing index with auto-creation off, 408): dead-lettering every
// record would be worse than waiting for the fix. Everything else (400
// mapping and parsing errors) is the document's fault.
func (e *ItemError) Retryable() bool {
	switch e.Status {
	case http.StatusTooManyRequests, http.StatusUnauthorized, http.StatusForbidden,
		http.StatusNotFound, http.StatusRequestTimeout, 0: // 0: a reply without a status
		return true
	}
	return e.Status >= 500
}

// bulkBuffers is the scratch one WriteBatch uses; pooled.
type bulkBuffers struct {
	body    bytes.Buffer // the NDJSON request
	reply   bytes.Buffer // the reply
	compact bytes.Buffer // a document made one line
	items   []int        // batch index of each document in body
}

// bulkWrite is one WriteBatch: the records cut into requests, the outcome
// of each record.
type bulkWrite struct {
	s     *Sink
	b     *bulkBuffers
	batch []sink.Record
	be    *sink.BatchError
	// wholeErr is the first whole-request failure; whole counts the
	// records it and its like failed.
	wholeErr error
	whole    int
}

func (w *bulkWrite) run(ctx context.Context) error {
	max := int(w.s.cfg.MaxRequestBytes)
	w.b.body.Reset()
	w.b.items = w.b.items[:0]
	for i := range w.batch {
		r := &w.batch[i]
		action, doc, err := w.prepare(r)
		if err != nil {
			w.be.Failed(i, sink.Permanent(fmt.Errorf("record %s: %w", r.ID, err)))
			continue
		}
		size := len(action) + len(r.ID) + 4 + len(doc) + 1
		if w.b.body.Len() > 0 && w.b.body.Len()+size > max {
			w.send(ctx)
		}
		w.b.body.Write(action)
		appendJSONString(&w.b.body, w.id(r))
		w.b.body.WriteString("}}\n")
		w.b.body.Write(doc)
		w.b.body.WriteByte('\n')
		w.b.items = append(w.b.items, i)
	}
	w.send(ctx)
	switch {
	case w.be.Len() == 0:
		return nil
	case w.whole == len(w.batch):
		// Nothing reached the store: the batch failed as a whole.
		return w.wholeErr
	}
	return w.be
}

// id is the document's _id: the message id, which equals event.id, or
// event.id from the body when the message had none.
func (w *bulkWrite) id(r *sink.Record) string {
	if r.ID != "" {
		return r.ID
	}
	return gjson.GetBytes(r.Data, "event.id").String()
}

// prepare checks what Elasticsearch would reject for the whole request
// rather than for the one document, and returns the action's start and the
// document on one line.
func (w *bulkWrite) prepare(r *sink.Record) (action, doc []byte, err error) {
	action = w.s.actions[r.Kind]
	if action == nil {
		return nil, nil, fmt.Errorf("unknown stream kind %d", r.Kind)
	}
	id := w.id(r)
	switch {
	case id == "":
		return nil, nil, errors.New("no id: neither a Nats-Msg-Id header nor event.id")
	case len(id) > maxIDBytes:
		return nil, nil, fmt.Errorf("id is %d bytes, Elasticsearch allows %d", len(id), maxIDBytes)
	case !utf8.ValidString(id):
		return nil, nil, errors.New("id is not valid UTF-8")
	}
	doc = bytes.TrimSpace(r.Data)
	if len(doc) == 0 || doc[0] != '{' || !gjson.ValidBytes(doc) {
		return nil, nil, errors.New("body is not one JSON object")
	}
	if bytes.IndexByte(doc, '\n') >= 0 {
		// A bulk body is one document per line.
		w.b.compact.Reset()
		if err := json.Compact(&w.b.compact, doc); err != nil {
			return nil, nil, fmt.Errorf("body: %w", err)
		}
		doc = w.b.compact.Bytes()
	}
	return action, doc, nil
}

// send performs the bulk request in the body and records the outcome of
// each of its documents, then empties the body.
func (w *bulkWrite) send(ctx context.Context) {
	if len(w.b.items) == 0 {
		return
	}
	defer func() {
		w.b.body.Reset()
		w.b.items = w.b.items[:0]
	}()
	err := w.post(ctx)
	if err == nil {
		err = itemOutcomes(w.b.reply.Bytes(), len(w.b.items), func(j int, err error) {
			w.be.Failed(w.b.items[j], err)
		})
	}
	if err != nil {
		if w.wholeErr == nil {
			w.wholeErr = err
		}
		w.whole += len(w.b.items)
		for _, i := range w.b.items {
			w.be.Failed(i, err)
		}
	}
}

// post sends the body and reads a 200 reply into w.b.reply; anything else
// is a failure of the whole request, retryable.
func (w *bulkWrite) post(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, w.s.cfg.RequestTimeout)
	defer cancel()
	n := len(w.b.items)
	res, err := esapi.BulkRequest{Body: bytes.NewReader(w.b.body.Bytes()), FilterPath: bulkFilter}.Do(ctx, w.s.client)
	if err != nil {
		return fmt.Errorf("elasticsearch: bulk of %d documents: %w", n, err)
	}
	defer res.Body.Close()
	w.b.reply.Reset()
	if _, err := w.b.reply.ReadFrom(res.Body); err != nil {
		return fmt.Errorf("elasticsearch: bulk of %d documents: read reply: %w", n, err)
	}
	if res.StatusCode != http.StatusOK {
		r := reply{status: res.StatusCode, body: w.b.reply.Bytes()}
		if res.StatusCode != http.StatusTooManyRequests && res.StatusCode < 500 {
			w.s.log.Error("bulk request refused whole; retrying, but this needs a fix (credentials, privileges, request size)",
				"documents", n, "reply", r.errorText())
		}
		return fmt.Errorf("elasticsearch: bulk of %d documents: %s", n, r.errorText())
	}
	return nil
}

// itemOutcomes reads the per-item results of a 200 bulk reply for n
// documents and calls failed for each document that was not written:
// 200/201 are written, 409 is already there (an earlier delivery wrote it),
// anything else failed, permanently or not (ItemError.Retryable). A reply
// that does not account for exactly n documents is an error.
func itemOutcomes(reply []byte, n int, failed func(j int, err error)) error {
	if !gjson.ValidBytes(reply) {
		return fmt.Errorf("elasticsearch: bulk reply is not JSON: %.200q", reply)
	}
	items := gjson.GetBytes(reply, "items")
	if got := items.Get("#").Int(); !items.IsArray() || got != int64(n) {
		return fmt.Errorf("elasticsearch: bulk reply has %d items for %d documents", got, n)
	}
	if !gjson.GetBytes(reply, "errors").Bool() {
		return nil
	}
	j := 0
	items.ForEach(func(_, item gjson.Result) bool {
		if j >= n {
			return false
		}
		defer func() { j++ }()
		// One key: the action ("create").
		var op gjson.Result
		item.ForEach(func(_, v gjson.Result) bool { op = v; return false })
		status := int(op.Get("status").Int())
		if status == http.StatusOK || status == http.StatusCreated || status == http.StatusConflict {
			return true
		}
		e := op.Get("error")
		ie := &ItemError{Status: status, Type: e.Get("type").String(), Reason: cut(e.Get("reason").String(), 300)}
		if c := e.Get("caused_by"); c.Exists() {
			ie.Reason += " (caused by " + c.Get("type").String() + ": " + cut(c.Get("reason").String(), 200) + ")"
		}
		if ie.Type == "" {
			ie.Type = "status " + strconv.Itoa(status)
		}
		if ie.Retryable() {
			failed(j, ie)
		} else {
			failed(j, sink.Permanent(ie))
		}
		return true
	})
	return nil
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// appendJSONString writes s as a JSON string. s is valid UTF-8.
func appendJSONString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b.WriteString(s[start:i])
		switch c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			const hex = "0123456789abcdef"
			b.WriteString(`\u00`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		}
		start = i + 1
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
}
