package sink

import (
	"sync"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/nats-io/nats.go/jetstream"
)

// delivery is one stream message a stream loop holds and has not settled.
// JetStream may deliver a held message again (its ack wait ran out under us:
// a stalled process, a keep-alive that came too late); the new delivery does
// not become a second record. It replaces msg, so that whatever the loop
// sends for the sequence — in progress, ack, nak, term — goes to the live
// delivery, and the last-delivery decision sees the newest count. Two
// deliveries of one sequence settled separately are how a message gets
// dead-lettered and then Nak-ed: the stale Nak makes JetStream redeliver
// past MaxDeliver, and a message past MaxDeliver pins the consumer's ack
// floor for good.
type delivery struct {
	seq    uint64
	size   int       // body size; the same on every delivery
	stored time.Time // when JetStream stored it

	// Guarded by held.mu.
	msg       jetstream.Msg
	delivered uint64
}

// held is every delivery a stream loop holds and has not settled — queued in
// the inbox, in the batch being filled, in the batch being written — by
// stream sequence. The keep-alive walks it; settling removes from it, so
// nothing is kept alive after it was settled.
type held struct {
	mu    sync.Mutex
	bySeq map[uint64]*delivery
}

func newHeld() *held {
	return &held{bySeq: map[uint64]*delivery{}}
}

// add registers m and returns its delivery; fresh is false when m is a
// redelivery of a sequence already held, which from now on carries m.
func (h *held) add(m jetstream.Msg, md *jetstream.MsgMetadata) (d *delivery, fresh bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if d := h.bySeq[md.Sequence.Stream]; d != nil {
		if md.NumDelivered > d.delivered {
			d.msg, d.delivered = m, md.NumDelivered
		}
		return d, false
	}
	d = &delivery{
		seq:       md.Sequence.Stream,
		size:      len(m.Data()),
		stored:    md.Timestamp,
		msg:       m,
		delivered: md.NumDelivered,
	}
	h.bySeq[d.seq] = d
	return d, true
}

// current returns d's live message and its delivery count.
func (h *held) current(d *delivery) (jetstream.Msg, uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return d.msg, d.delivered
}

// take removes d and returns the live message to settle it with; ok is false
// when d was settled already.
func (h *held) take(d *delivery) (m jetstream.Msg, delivered uint64, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.bySeq[d.seq] != d {
		return nil, 0, false
	}
	delete(h.bySeq, d.seq)
	return d.msg, d.delivered, true
}

// dropRedelivered removes d if it is a redelivery (a first delivery below
// the ack floor means the consumer was reset: it is written) and reports
// whether it did.
func (h *held) dropRedelivered(d *delivery) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if d.delivered < 2 || h.bySeq[d.seq] != d {
		return false
	}
	delete(h.bySeq, d.seq)
	return true
}

// inProgress tells JetStream that every held message is still being worked
// on, and returns how many could not be told. It holds the lock throughout,
// so that no message is told after it was settled (an InProgress after a
// NakWithDelay would replace the delay by a full ack wait).
func (h *held) inProgress() (failed int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, d := range h.bySeq {
		if err := d.msg.InProgress(); err != nil {
			failed++
		}
	}
	return failed
}

// keepAliveEvery is how often the held messages are kept alive: a fifth of
// the shortest ack wait the consumer applies (a backoff step may be shorter
// than ack_wait), so that a keep-alive may come nearly four periods late — a
// scheduler stalled under load, a busy connection — before JetStream
// redelivers a message under us.
func keepAliveEvery(cs topology.ConsumerSettings) time.Duration {
	w := cs.AckWait
	for _, b := range cs.Backoff {
		w = min(w, b)
	}
	return w / 5
}
