package sink

import "sync"

// inbox holds, in delivery order, the deliveries that are not in a batch
// yet. The pump fills it while the loop writes, so that every delivered
// message is taken from the client at once and registered where the
// keep-alive reaches it (a message left in the client's buffer during a slow
// write would outlive its AckWait and come twice). It needs no bound of its
// own: JetStream delivers at most MaxAckPending unacknowledged messages.
type inbox struct {
	mu     sync.Mutex
	msgs   []*delivery
	head   int
	closed bool
	err    error
	ready  chan struct{} // signalled when a message arrives or the inbox closes
}

func newInbox() *inbox {
	return &inbox{ready: make(chan struct{}, 1)}
}

func (q *inbox) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *inbox) push(m *delivery) {
	q.mu.Lock()
	if q.head > 0 && q.head == len(q.msgs) {
		clear(q.msgs)
		q.msgs, q.head = q.msgs[:0], 0
	}
	q.msgs = append(q.msgs, m)
	q.mu.Unlock()
	q.signal()
}

// close marks the end of deliveries; err is why, nil for a clean stop.
func (q *inbox) close(err error) {
	q.mu.Lock()
	q.closed, q.err = true, err
	q.mu.Unlock()
	q.signal()
}

// pop returns the oldest message; ok is false when the inbox is empty, and
// closed tells whether more can come.
func (q *inbox) pop() (m *delivery, ok, closed bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.msgs) {
		return nil, false, q.closed
	}
	m = q.msgs[q.head]
	q.msgs[q.head] = nil
	q.head++
	return m, true, false
}

// peekSize is the body size of the oldest message, or -1 when empty.
func (q *inbox) peekSize() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.msgs) {
		return -1
	}
	return q.msgs[q.head].size
}

func (q *inbox) failure() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.err
}
