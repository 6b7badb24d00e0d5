package kvstate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

// Store is a detect.StateStore over the crowsnest-state bucket, opened on
// first use so New does no I/O. It is safe for concurrent use.
type Store struct {
	js jetstream.JetStream

	mu     sync.Mutex
	kv     jetstream.KeyValue
	stream jetstream.Stream

	// inflight is the latest asynchronous write of each key, published or
	// not yet, until it is acknowledged: a read or a purge of the key
	// publishes and waits for it, so it sees the key as the engine last
	// wrote it and no write lands after a purge.
	wmu      sync.Mutex
	inflight map[string]*Write
}

// writeBound bounds how long a Write waits for its PubAck when the
// connection dies under it (a PubAck that never comes): the input it
// belongs to is redelivered by then anyway.
const writeBound = 30 * time.Second

// A Write is one or more Puts of a key, coalesced and published as one
// without waiting: every caller that collected it must see it done without
// error before it acks the input whose processing made it.
type Write struct {
	key       string
	value     []byte // the latest Put's, until published (Store.wmu)
	published bool   // under Store.wmu
	done      chan struct{}
	err       error // set before done is closed
}

// Done is closed once the server stored the write or it failed (Err). A
// write is published only by Writes.Flush or by a read, listing or purge
// of its key: wait for Done only after one of them.
func (w *Write) Done() <-chan struct{} { return w.done }

// Err is why the write failed; nil once Done if it is stored. Call it only
// after Done is closed.
func (w *Write) Err() error { return w.err }

// Writes makes Put asynchronous for one consumer (WithWrites): each Put is
// handed to collect, on the goroutine calling Put, and held until Flush —
// Puts of a key in between become one write of the last value, which every
// input that collected it waits for. The processor collects per input, so a
// correlation's checkpoint is one more output of the input, awaited with its
// event and alerts before the input is acked, and flushes once per fetched
// batch: not a round trip per correlation match on the event path.
type Writes struct {
	collect func(*Write)

	mu      sync.Mutex
	pending []pendingWrite // to publish at Flush (possibly already published)
}

type pendingWrite struct {
	s *Store
	w *Write
}

// NewWrites returns Writes handing each Put's Write to collect.
func NewWrites(collect func(*Write)) *Writes { return &Writes{collect: collect} }

// Flush publishes every write held: each then completes on its own.
func (ws *Writes) Flush() {
	ws.mu.Lock()
	pending := ws.pending
	ws.pending = nil
	ws.mu.Unlock()
	for _, p := range pending {
		p.s.wmu.Lock()
		p.s.publish(p.w)
		p.s.wmu.Unlock()
	}
}

type writesKey struct{}

// WithWrites returns a context under which Put does not wait for the
// server (see Writes).
func WithWrites(ctx context.Context, ws *Writes) context.Context {
	return context.WithValue(ctx, writesKey{}, ws)
}

// subject is where the bucket stores key: what KeyValue.Put publishes to
// for a bucket in this account, neither mirrored nor behind a domain prefix
// (topology declares it so; Delete purges the same subject).
func subject(key string) string { return "$KV." + topology.StateBucket + "." + key }

// putAsync makes value the one to write under key and hands the Write to
// ws. Writes of one key keep their order: a key has at most one write not
// yet published, published on one connection to one stream, which stores
// them as they arrive.
func (s *Store) putAsync(key string, value []byte, ws *Writes) error {
	if !validKey(key) {
		return fmt.Errorf("put %q: not a valid key", key)
	}
	s.wmu.Lock()
	if s.inflight == nil {
		s.inflight = map[string]*Write{}
	}
	w := s.inflight[key]
	if w == nil || w.published {
		w = &Write{key: key, done: make(chan struct{})}
		s.inflight[key] = w
	}
	w.value = value
	s.wmu.Unlock()
	ws.mu.Lock()
	ws.pending = append(ws.pending, pendingWrite{s, w})
	ws.mu.Unlock()
	ws.collect(w)
	return nil
}

// publish sends w if it was not yet sent; the caller holds s.wmu, so no
// other write of the key is published in between.
func (s *Store) publish(w *Write) {
	if w.published {
		return
	}
	w.published = true
	fut, err := s.js.PublishMsgAsync(&nats.Msg{Subject: subject(w.key), Data: w.value})
	w.value = nil
	if err != nil {
		w.err = fmt.Errorf("put %s: %w", w.key, err)
		s.forget(w)
		close(w.done)
		return
	}
	// A future's channels have a single reader; this goroutine is it, so
	// every input's acker and a read of the key can wait on done.
	go func() {
		timer := time.NewTimer(writeBound)
		defer timer.Stop()
		select {
		case <-fut.Ok():
		case err := <-fut.Err():
			w.err = fmt.Errorf("put %s: %w", w.key, err)
		case <-timer.C:
			w.err = fmt.Errorf("put %s: no PubAck within %s", w.key, writeBound)
		}
		s.wmu.Lock()
		s.forget(w)
		s.wmu.Unlock()
		close(w.done)
	}()
}

// forget drops w from inflight unless a later write of its key replaced
// it; the caller holds s.wmu.
func (s *Store) forget(w *Write) {
	if s.inflight[w.key] == w {
		delete(s.inflight, w.key)
	}
}

// settle publishes and waits for the write of key (or, with all, of every
// key) not yet acknowledged. A failed write is no error here: its input is
// redelivered, and the key is read as the server holds it.
func (s *Store) settle(ctx context.Context, key string, all bool) error {
	s.wmu.Lock()
	var wait []*Write
	if all {
		for _, w := range s.inflight {
			wait = append(wait, w)
		}
	} else if w := s.inflight[key]; w != nil {
		wait = append(wait, w)
	}
	for _, w := range wait {
		s.publish(w)
	}
	s.wmu.Unlock()
	for _, w := range wait {
		select {
		case <-w.done:
		case <-ctx.Done():
			return fmt.Errorf("wait for the write of %s: %w", w.key, ctx.Err())
		}
	}
	return nil
}

// validKey reports whether key is one literal subject token sequence.
func validKey(key string) bool {
	return key != "" && !strings.ContainsAny(key, " \t\r\n*>") && !strings.HasPrefix(key, ".") && !strings.HasSuffix(key, ".")
}

// New returns a store over js's crowsnest-state bucket.
func New(js jetstream.JetStream) *Store { return &Store{js: js} }

func (s *Store) open(ctx context.Context) (jetstream.KeyValue, jetstream.Stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kv != nil {
		return s.kv, s.stream, nil
	}
	kv, err := s.js.KeyValue(ctx, topology.StateBucket)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", topology.StateBucket, err)
	}
	stream, err := s.js.Stream(ctx, topology.StateBucketStream)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", topology.StateBucketStream, err)
	}
	s.kv, s.stream = kv, stream
	return kv, stream, nil
}

// Get returns key's value, or nil and no error when the bucket does not
// hold it.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	kv, _, err := s.open(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.settle(ctx, key, false); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return e.Value(), nil
}

// Put stores value under key and returns once the server has it — or, under
// a context from WithWrites, at once, its Write collected.
func (s *Store) Put(ctx context.Context, key string, value []byte) error {
	if ws, ok := ctx.Value(writesKey{}).(*Writes); ok && ws != nil {
		return s.putAsync(key, value, ws)
	}
	kv, _, err := s.open(ctx)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, key, value); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// Delete removes every revision of key. It purges the key's subject from
// the bucket's stream rather than calling KeyValue.Delete, whose delete
// marker would stay in the stream forever: a processor closes windows all
// day, and each closed window must leave nothing behind.
func (s *Store) Delete(ctx context.Context, key string) error {
	if key == "" || strings.ContainsAny(key, " *>") {
		return fmt.Errorf("delete %q: not a valid key", key)
	}
	_, stream, err := s.open(ctx)
	if err != nil {
		return err
	}
	if err := s.settle(ctx, key, false); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if err := stream.Purge(ctx, jetstream.WithPurgeSubject("$KV."+topology.StateBucket+"."+key)); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// Keys returns the keys that start with prefix (which must end at a token
// boundary, with a dot, or be empty for all keys).
func (s *Store) Keys(ctx context.Context, prefix string) ([]string, error) {
	if prefix != "" && !strings.HasSuffix(prefix, ".") {
		return nil, fmt.Errorf("list keys: prefix %q must end with a dot", prefix)
	}
	kv, _, err := s.open(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.settle(ctx, "", true); err != nil {
		return nil, fmt.Errorf("list keys %s>: %w", prefix, err)
	}
	lister, err := kv.ListKeysFiltered(ctx, prefix+">")
	if err != nil {
		return nil, fmt.Errorf("list keys %s>: %w", prefix, err)
	}
	var keys []string
	// The lister stops itself once it has sent every key (or ctx ends).
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list keys %s>: %w", prefix, err)
	}
	return keys, nil
}
