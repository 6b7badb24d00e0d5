package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
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
	obs  ConsumerObserver // nil when the sink does not want the status

	held *held
	// floor is the consumer's ack floor as last observed: JetStream settled
	// every sequence at or below it, so a redelivery of one is a stale copy
	// that was on its way when the ack landed. Written by the loop, read by
	// the pump.
	floor atomic.Uint64
	// status carries the latest consumer status from the watcher to the
	// loop, which applies it between batches (see observe).
	status chan ConsumerStatus

	// The batch being filled; reused.
	batch []*delivery
	recs  []Record
	bytes int

	// Scratch for a flush; reused.
	sub      []Record
	pending  []int
	retry    []int
	outcome  []error
	dlqCause []error
	dlqIdx   []int
}

func newStreamLoop(r *Runner, k Kind, cons jetstream.Consumer) *streamLoop {
	n := r.cfg.MaxBatchEvents
	obs, _ := r.sink.(ConsumerObserver)
	return &streamLoop{
		r:       r,
		kind:    k,
		cons:    cons,
		log:     r.log.With("stream", k.Stream()),
		obs:     obs,
		held:    newHeld(),
		status:  make(chan ConsumerStatus, 1),
		batch:   make([]*delivery, 0, n),
		recs:    make([]Record, 0, n),
		sub:     make([]Record, 0, n),
		pending: make([]int, 0, n),
		retry:   make([]int, 0, n),
		outcome: make([]error, 0, n),
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
			if d := l.receive(m); d != nil {
				q.push(d)
			}
		}
	})
	// Every held message — queued, in the batch being filled or written,
	// being dead-lettered — is kept alive on a clock of its own, whatever
	// the loop is doing, until run returns.
	stopKeepAlive := make(chan struct{})
	defer close(stopKeepAlive)
	wg.Go(func() { l.keepAlive(stopKeepAlive) })
	watchCtx, stopWatch := context.WithCancel(soft)
	defer stopWatch()
	wg.Go(func() { l.watch(watchCtx) })

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
		case st := <-l.status:
			l.observe(st)
			continue
		case <-q.ready:
		}
		for {
			if size := q.peekSize(); size >= 0 && len(l.batch) > 0 && l.bytes+size > int(l.r.cfg.MaxBatchBytes) {
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
			l.add(m)
			if len(l.batch) == 1 {
				timer.Reset(l.r.cfg.FlushInterval)
			}
			if len(l.batch) >= l.r.cfg.MaxBatchEvents || l.bytes >= int(l.r.cfg.MaxBatchBytes) {
				timer.Stop()
				l.flush(soft, hard)
			}
		}
	}
}

// receive registers a delivery the pump took from the client and returns
// it, or nil when the loop has nothing more to do with it: a redelivery of a
// message held already (merged into it) or settled already.
func (l *streamLoop) receive(m jetstream.Msg) *delivery {
	md, err := m.Metadata()
	if err != nil {
		// Not a JetStream delivery; nothing can be done with it but to say so.
		l.r.m.c.Error(telemetry.DecodeFailed, telemetry.StageReceiving)
		l.log.Error("message without JetStream metadata: terminating it", "subject", m.Subject(), "err", err)
		if err := m.TermWithReason("no JetStream metadata"); err != nil {
			l.r.m.c.Error(telemetry.AckFailed, telemetry.StageSending)
		}
		return nil
	}
	if md.NumDelivered > 1 && md.Sequence.Stream <= l.floor.Load() {
		// Acked or terminated since it was sent; the server ignores
		// anything said about it now.
		l.log.Debug("stale redelivery of a settled message dropped", "seq", md.Sequence.Stream, "deliveries", md.NumDelivered)
		return nil
	}
	d, fresh := l.held.add(m, md)
	if !fresh {
		l.log.Warn("message redelivered while held: its ack wait ran out before a keep-alive reached JetStream (process stalled, or ack_wait too short for this load); settling the newest delivery",
			"seq", d.seq, "deliveries", md.NumDelivered, "ack_wait", l.r.cs.AckWait)
		return nil
	}
	return d
}

// add appends d to the batch.
func (l *streamLoop) add(d *delivery) {
	m, delivered := l.held.current(d)
	l.r.m.c.Received(1)
	h := m.Headers()
	l.batch = append(l.batch, d)
	l.recs = append(l.recs, Record{
		Data:      m.Data(),
		ID:        h.Get(headers.MsgID),
		Kind:      l.kind,
		Subject:   m.Subject(),
		Header:    h,
		Seq:       d.seq,
		Delivered: delivered,
		Stored:    d.stored,
	})
	l.bytes += d.size
}

// observe applies a consumer status: the floor first, so that nothing at or
// below the floor the sink is told about reaches WriteBatch afterwards (a
// sink may forget what it wrote there). It runs on the loop, between
// batches.
func (l *streamLoop) observe(st ConsumerStatus) {
	l.floor.Store(st.AckFloor)
	if l.obs != nil {
		l.obs.ObserveConsumer(st)
	}
}

// statusTimeout bounds one read of the consumer info. It is generous: a
// read only feeds the lag gauge, the observer and the floor, all of which
// may lag behind without harm, while a short timeout under load turns into a
// stream of warnings.
const statusTimeout = 10 * time.Second

// watch reads the consumer's info every StatusInterval until ctx ends: the
// lag gauge here, the rest handed to the loop (observe).
func (l *streamLoop) watch(ctx context.Context) {
	t := time.NewTicker(l.r.cfg.StatusInterval)
	defer t.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, max(l.r.cfg.StatusInterval, statusTimeout))
		info, err := l.cons.Info(ictx)
		cancel()
		switch {
		case err == nil:
			l.r.m.pending[l.kind].Set(float64(info.NumPending))
			st := ConsumerStatus{
				Kind:          l.kind,
				NumPending:    info.NumPending,
				NumAckPending: info.NumAckPending,
				AckFloor:      info.AckFloor.Stream,
			}
			// Replace a status the loop has not applied yet.
			select {
			case <-l.status:
			default:
			}
			l.status <- st
		case ctx.Err() == nil:
			l.log.Warn("read consumer info", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// dropSettled takes out of the batch the redeliveries JetStream settled
// since they were received (see streamLoop.floor).
func (l *streamLoop) dropSettled() {
	floor := l.floor.Load()
	k := 0
	for i, d := range l.batch {
		if d.seq <= floor && l.held.dropRedelivered(d) {
			l.r.m.c.DiscardedIntentional(1)
			l.bytes -= d.size
			continue
		}
		l.batch[k], l.recs[k] = d, l.recs[i]
		k++
	}
	clear(l.batch[k:])
	clear(l.recs[k:])
	l.batch, l.recs = l.batch[:k], l.recs[:k]
}

// flush writes the batch and settles every message of it, then empties it.
func (l *streamLoop) flush(soft, hard context.Context) {
	defer l.reset()
	l.dropSettled()
	n := len(l.batch)
	if n == 0 {
		return
	}
	l.r.m.batchSize.Observe(float64(n))

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
				l.ack(i)
			case IsPermanent(err):
				l.dlqCause, l.dlqIdx = append(l.dlqCause, err), append(l.dlqIdx, i)
			case final && l.lastDelivery(i):
				_, delivered := l.held.current(l.batch[i])
				err = fmt.Errorf("gave up after %d deliveries: %w", delivered, err)
				l.dlqCause, l.dlqIdx = append(l.dlqCause, err), append(l.dlqIdx, i)
			default:
				l.retry = append(l.retry, i)
			}
		}
		if len(l.retry) > 0 {
			l.r.m.writeError(l.outcome[indexOf(l.pending, l.retry[0])], len(l.retry))
		}
		l.deadLetter(hard)
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
			l.nak(i)
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

// lastDelivery reports whether JetStream will not deliver record i again:
// judged on its newest delivery, which may have come during the write.
func (l *streamLoop) lastDelivery(i int) bool {
	_, delivered := l.held.current(l.batch[i])
	return l.r.cs.IsLastDelivery(delivered)
}

// deadLetter publishes the records l.dlqIdx names to the dead-letter stream
// (bus/deadletter: original bytes, reason, stage, delivery count), then
// terminates each one JetStream stored; the others are handed back for
// redelivery (they are dead-lettered again then).
func (l *streamLoop) deadLetter(ctx context.Context) {
	if len(l.dlqIdx) == 0 {
		return
	}
	l.r.m.writeError(l.dlqCause[0], len(l.dlqIdx))
	errs := make([]error, len(l.dlqIdx))
	for j, i := range l.dlqIdx {
		m, _ := l.held.current(l.batch[i])
		errs[j] = l.r.dlq.Publish(ctx, deadletter.FromMsg(l.r.consumer, m, l.dlqCause[j]))
	}
	for j, i := range l.dlqIdx {
		rec := &l.recs[i]
		if errs[j] != nil {
			l.r.m.c.Error(telemetry.PublishFailed, telemetry.StageSending)
			l.log.Error("dead-letter publish failed, redelivering later", "event_id", rec.ID, "err", errs[j], "cause", l.dlqCause[j])
			l.nak(i)
			continue
		}
		m, delivered, ok := l.held.take(l.batch[i])
		if !ok {
			continue
		}
		l.log.Warn("record dead-lettered", "event_id", rec.ID, "seq", rec.Seq, "deliveries", delivered, "err", l.dlqCause[j])
		l.r.m.c.DiscardedUnintentional(1)
		if err := m.TermWithReason(oneLine("dead-lettered by "+l.r.consumer+": "+l.dlqCause[j].Error(), 256)); err != nil {
			l.r.m.c.Error(telemetry.AckFailed, telemetry.StageSending)
			l.log.Warn("term failed", "event_id", rec.ID, "err", err)
		}
	}
}

func (l *streamLoop) ack(i int) {
	m, _, ok := l.held.take(l.batch[i])
	if !ok {
		return
	}
	if err := m.Ack(); err != nil {
		l.r.m.c.Error(telemetry.AckFailed, telemetry.StageSending)
		l.log.Warn("ack failed; the record will be redelivered", "event_id", l.recs[i].ID, "err", err)
		return
	}
	l.r.m.c.Sent(1)
}

// nakNow hands a message that never made it into a batch back to
// JetStream for immediate redelivery.
func (l *streamLoop) nakNow(d *delivery) {
	m, _, ok := l.held.take(d)
	if !ok {
		return
	}
	if err := m.Nak(); err != nil {
		l.r.m.c.Error(telemetry.AckFailed, telemetry.StageSending)
	}
}

func (l *streamLoop) nak(i int) {
	m, delivered, ok := l.held.take(l.batch[i])
	if !ok {
		return
	}
	d := backoff(int(delivered), l.r.cfg.Retry.RedeliveryDelay, l.r.cfg.Retry.MaxRedeliveryDelay)
	if err := m.NakWithDelay(d); err != nil {
		l.r.m.c.Error(telemetry.AckFailed, telemetry.StageSending)
		l.log.Warn("nak failed; the record is redelivered after ack_wait", "event_id", l.recs[i].ID, "err", err)
	}
}

// keepAlive tells JetStream every keepAliveEvery that the held messages are
// still being worked on, so that a slow write, a retry pause, a dead-letter
// publish or a queue behind them does not get them redelivered under us.
func (l *streamLoop) keepAlive(stop <-chan struct{}) {
	t := time.NewTicker(keepAliveEvery(l.r.cs))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		for range l.held.inProgress() {
			l.r.m.c.Error(telemetry.AckFailed, telemetry.StageSending)
		}
	}
}

func (l *streamLoop) reset() {
	clear(l.batch)
	clear(l.recs)
	l.batch, l.recs, l.bytes = l.batch[:0], l.recs[:0], 0
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
