package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/deadletter"
	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/daemon/telemetry"
	"github.com/nats-io/nats.go/jetstream"
)

// streamLoop batches one stream's messages into WriteBatch calls and settles
// every message: ack, nak with delay, or dead-letter and term.
type streamLoop struct {
	r    *Runner
	kind Kind
	cons jetstream.Consumer
	log  *slog.Logger

	// The batch being filled; reused.
	msgs  []jetstream.Msg
	recs  []Record
	bytes int

	// Scratch for a flush; reused.
	sub      []Record
	pending  []int
	retry    []int
	outcome  []error
	settled  []bool
	dlqCause []error
	dlqIdx   []int
}

func newStreamLoop(r *Runner, k Kind, cons jetstream.Consumer) *streamLoop {
	n := r.cfg.MaxBatchEvents
	return &streamLoop{
		r:       r,
		kind:    k,
		cons:    cons,
		log:     r.log.With("stream", k.Stream()),
		msgs:    make([]jetstream.Msg, 0, n),
		recs:    make([]Record, 0, n),
		sub:     make([]Record, 0, n),
		pending: make([]int, 0, n),
		retry:   make([]int, 0, n),
		outcome: make([]error, 0, n),
		settled: make([]bool, 0, n),
	}
}

// run consumes until soft is cancelled (then drains) or the consumer fails.
// hard bounds the writes of the final flush.
func (l *streamLoop) run(soft, hard context.Context) error {
	it, err := l.cons.Messages(
		jetstream.PullMaxMessages(l.r.cfg.MaxBatchEvents),
		jetstream.WithMessagesErrOnMissingHeartbeat(false),
	)
	if err != nil {
		return fmt.Errorf("consume %s: %w", l.kind.Stream(), err)
	}
	q := newInbox()
	var wg sync.WaitGroup
	defer wg.Wait()
	// The pump moves deliveries from the client into the inbox, also while
	// a batch is being written; it ends when the iterator is stopped or
	// drained.
	wg.Go(func() {
		for {
			m, err := it.Next()
			if err != nil {
				if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					err = nil
				}
				q.close(err)
				return
			}
			q.push(m)
		}
	})
	// Queued messages are kept alive like the batch being written.
	stopKeepAlive := make(chan struct{})
	defer close(stopKeepAlive)
	wg.Go(func() {
		t := time.NewTicker(l.r.cs.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-stopKeepAlive:
				return
			case <-t.C:
				q.each(func(m jetstream.Msg) {
					if err := m.InProgress(); err != nil {
						l.r.m.c.Error(telemetry.AckFailed, telemetry.StageSending)
					}
				})
			}
		}
	})

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	done := soft.Done()
	var hardDone <-chan struct{}
	for {
		select {
		case <-done:
			// Stop fetching; what the client already holds still comes
			// through the iterator and is written before Run returns.
			done = nil
			hardDone = hard.Done()
			it.Drain()
			continue
		case <-hardDone:
			// The drain outlived its deadline: hand everything still
			// queued back to JetStream.
			hardDone = nil
			it.Stop()
			continue
		case <-timer.C:
			l.flush(soft, hard)
			continue
		case <-q.ready:
		}
		for {
			if size := q.peekSize(); size >= 0 && len(l.msgs) > 0 && l.bytes+size > int(l.r.cfg.MaxBatchBytes) {
				timer.Stop()
				l.flush(soft, hard)
			}
			m, ok, closed := q.pop()
			if closed {
				timer.Stop()
				l.flush(soft, hard)
				if err := q.failure(); err != nil {
					l.r.m.c.Error(telemetry.ReadFailed, telemetry.StageReceiving)
					return fmt.Errorf("consume %s: %w", l.kind.Stream(), err)
				}
				if done != nil {
					return fmt.Errorf("consume %s: message iterator closed (connection closed?)", l.kind.Stream())
				}
				return nil
			}
			if !ok {
				break
			}
			if hard.Err() != nil {
				// Past the drain deadline: not written, redelivered at once.
				l.nakNow(m)
				continue
			}
			if l.add(m) && len(l.msgs) == 1 {
				timer.Reset(l.r.cfg.FlushInterval)
			}
			if len(l.msgs) >= l.r.cfg.MaxBatchEvents || l.bytes >= int(l.r.cfg.MaxBatchBytes) {
				timer.Stop()
				l.flush(soft, hard)
			}
		}
	}
}

// add appends m to the batch and reports whether it did.
func (l *streamLoop) add(m jetstream.Msg) bool {
	meta, err := m.Metadata()
	if err != nil {
		// Not a JetStream delivery; nothing can be done with it but to say so.
		l.r.m.c.Error(telemetry.DecodeFailed, telemetry.StageReceiving)
		l.log.Error("message without JetStream metadata: terminating it", "subject", m.Subject(), "err", err)
		if err := m.TermWithReason("no JetStream metadata"); err != nil {
			l.r.m.c.Error(telemetry.AckFailed, telemetry.StageSending)
		}
		return false
	}
	l.r.m.c.Received(1)
	data := m.Data()
	h := m.Headers()
	l.msgs = append(l.msgs, m)
	l.recs = append(l.recs, Record{
		Data:      data,
		ID:        h.Get(headers.MsgID),
		Kind:      l.kind,
		Subject:   m.Subject(),
		Header:    h,
		Seq:       meta.Sequence.Stream,
		Delivered: meta.NumDelivered,
		Stored:    meta.Timestamp,
	})
	l.bytes += len(data)
	return true
}

// flush writes the batch and settles every message of it, then empties it.
func (l *streamLoop) flush(soft, hard context.Context) {
	n := len(l.msgs)
	if n == 0 {
		return
	}
	defer l.reset()
	l.r.m.batchSize.Observe(float64(n))

	l.settled = l.settled[:n]
	clear(l.settled)
	var mu sync.Mutex // guards settled between settling and the keep-alive
	stopKeepAlive := l.keepAlive(&mu)
	defer stopKeepAlive()
	settle := func(i int) bool {
		mu.Lock()
		defer mu.Unlock()
		if l.settled[i] {
			return false
		}
		l.settled[i] = true
		return true
	}

	l.pending = l.pending[:0]
	for i := range n {
		l.pending = append(l.pending, i)
	}
	for attempt := 1; ; attempt++ {
		l.write(hard)
		l.retry = l.retry[:0]
		l.dlqCause, l.dlqIdx = l.dlqCause[:0], l.dlqIdx[:0]
		final := attempt >= l.r.cfg.Retry.MaxAttempts || soft.Err() != nil
		for j, i := range l.pending {
			err := l.outcome[j]
			switch {
			case err == nil:
				if settle(i) {
					l.ack(i)
				}
			case IsPermanent(err):
				l.dlqCause, l.dlqIdx = append(l.dlqCause, err), append(l.dlqIdx, i)
			case final && l.lastDelivery(i):
				err = fmt.Errorf("gave up after %d deliveries: %w", l.recs[i].Delivered, err)
				l.dlqCause, l.dlqIdx = append(l.dlqCause, err), append(l.dlqIdx, i)
			default:
				l.retry = append(l.retry, i)
			}
		}
		if len(l.retry) > 0 {
			l.r.m.writeError(l.outcome[indexOf(l.pending, l.retry[0])], len(l.retry))
		}
		l.deadLetter(hard, settle)
		if len(l.retry) == 0 {
			return
		}
		if !final {
			first := l.retry[0]
			l.log.Warn("write failed, retrying", "attempt", attempt, "records", len(l.retry),
				"event_id", l.recs[first].ID, "err", l.outcome[indexOf(l.pending, first)])
			if sleep(soft, backoff(attempt, l.r.cfg.Retry.InitialBackoff, l.r.cfg.Retry.MaxBackoff)) {
				l.pending, l.retry = l.retry, l.pending
				continue
			}
		}
		// Hand the rest back to JetStream, which redelivers each after a
		// delay growing with its delivery count.
		first := l.retry[0]
		l.log.Warn("write failed, redelivering later", "attempts", attempt, "records", len(l.retry),
			"event_id", l.recs[first].ID, "err", l.outcome[indexOf(l.pending, first)])
		for _, i := range l.retry {
			if settle(i) {
				l.nak(i)
			}
		}
		return
	}
}

// write calls WriteBatch with the pending records and fills l.outcome, one
// entry per pending record.
func (l *streamLoop) write(hard context.Context) {
	l.sub = l.sub[:0]
	for _, i := range l.pending {
		l.sub = append(l.sub, l.recs[i])
	}
	ctx, cancel := context.WithTimeout(hard, l.r.cfg.WriteTimeout)
	start := time.Now()
	err := l.r.sink.WriteBatch(ctx, l.sub)
	l.r.m.write.Observe(time.Since(start).Seconds())
	cancel()
	clear(l.sub) // drop references to message buffers

	l.outcome = l.outcome[:len(l.pending)]
	clear(l.outcome)
	if err == nil {
		return
	}
	var be *BatchError
	if errors.As(err, &be) {
		for _, f := range be.Items() {
			if f.Index < 0 || f.Index >= len(l.outcome) {
				l.log.Error("sink named a record outside the batch; ignoring it", "index", f.Index, "batch", len(l.outcome), "err", f.Err)
				continue
			}
			l.outcome[f.Index] = f.Err
		}
		return
	}
	for j := range l.outcome {
		l.outcome[j] = err
	}
}

// lastDelivery reports whether JetStream will not deliver record i again.
func (l *streamLoop) lastDelivery(i int) bool {
	return l.r.cs.MaxDeliver > 0 && l.recs[i].Delivered >= uint64(l.r.cs.MaxDeliver)
}

// deadLetter publishes the records l.dlqIdx names to the dead-letter stream
// (bus/deadletter: original bytes, reason, stage, delivery count), then
// terminates each one JetStream stored; the others are handed back for
// redelivery (they are dead-lettered again then).
func (l *streamLoop) deadLetter(ctx context.Context, settle func(int) bool) {
	if len(l.dlqIdx) == 0 {
		return
	}
	l.r.m.writeError(l.dlqCause[0], len(l.dlqIdx))
	errs := make([]error, len(l.dlqIdx))
	for j, i := range l.dlqIdx {
		rec := deadletter.FromMsg(l.r.consumer, l.msgs[i], l.dlqCause[j])
		errs[j] = l.r.dlq.Publish(ctx, rec)
	}
	for j, i := range l.dlqIdx {
		rec := &l.recs[i]
		if errs[j] != nil {
			l.r.m.c.Error(telemetry.PublishFailed, telemetry.StageSending)
			l.log.Error("dead-letter publish failed, redelivering later", "event_id", rec.ID, "err", errs[j], "cause", l.dlqCause[j])
			if settle(i) {
				l.nak(i)
			}
			continue
		}
		l.log.Warn("record dead-lettered", "event_id", rec.ID, "seq", rec.Seq, "deliveries", rec.Delivered, "err", l.dlqCause[j])
		l.r.m.c.DiscardedUnintentional(1)
		if settle(i) {
			if err := l.msgs[i].TermWithReason(oneLine("dead-lettered by "+l.r.consumer+": "+l.dlqCause[j].Error(), 256)); err != nil {
				l.r.m.c.Error(telemetry.AckFailed, telemetry.StageSending)
				l.log.Warn("term failed", "event_id", rec.ID, "err", err)
			}
		}
	}
}

func (l *streamLoop) ack(i int) {
	if err := l.msgs[i].Ack(); err != nil {
		l.r.m.c.Error(telemetry.AckFailed, telemetry.StageSending)
		l.log.Warn("ack failed; the record will be redelivered", "event_id", l.recs[i].ID, "err", err)
		return
	}
	l.r.m.c.Sent(1)
}

// nakNow hands a message that never made it into a batch back to
// JetStream for immediate redelivery.
func (l *streamLoop) nakNow(m jetstream.Msg) {
	if err := m.Nak(); err != nil {
		l.r.m.c.Error(telemetry.AckFailed, telemetry.StageSending)
	}
}

func (l *streamLoop) nak(i int) {
	d := backoff(int(l.recs[i].Delivered), l.r.cfg.Retry.RedeliveryDelay, l.r.cfg.Retry.MaxRedeliveryDelay)
	if err := l.msgs[i].NakWithDelay(d); err != nil {
		l.r.m.c.Error(telemetry.AckFailed, telemetry.StageSending)
		l.log.Warn("nak failed; the record is redelivered after ack_wait", "event_id", l.recs[i].ID, "err", err)
	}
}

// keepAlive tells JetStream every AckWait/3 that the unsettled messages of
// the batch are still being worked on, so a slow write or a retry pause does
// not get them redelivered under it. It returns the function that stops it.
func (l *streamLoop) keepAlive(mu *sync.Mutex) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(l.r.cs.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			mu.Lock()
			for i, s := range l.settled {
				if s {
					continue
				}
				if err := l.msgs[i].InProgress(); err != nil {
					l.r.m.c.Error(telemetry.AckFailed, telemetry.StageSending)
				}
			}
			mu.Unlock()
		}
	})
	return func() { close(done); wg.Wait() }
}

func (l *streamLoop) reset() {
	clear(l.msgs)
	clear(l.recs)
	l.msgs, l.recs, l.bytes = l.msgs[:0], l.recs[:0], 0
}

// sleep waits d, or less if ctx ends first; it reports whether it slept d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func indexOf(s []int, v int) int {
	for j, x := range s {
		if x == v {
			return j
		}
	}
	return 0
}
