package sink

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// maxErrorHeader caps the Crowsnest-Error header: one line, bounded.
const maxErrorHeader = 1024

// deadLetterMsg builds the dead-letter record of rec, rejected by stage with
// cause: the original bytes as body, the reason and provenance in headers,
// and a message id derived from the original (stage, stream, sequence) so
// that dead-lettering the same delivery twice (the Term was lost) stores it
// once within the dead-letter stream's duplicate window.
//
// This is the format docs/ARCHITECTURE.md gives; bus/deadletter will own it
// and this function will call it.
func deadLetterMsg(stage string, rec *Record, cause error) (*nats.Msg, error) {
	source := rec.Header.Get(headers.Source)
	if topology.ValidateToken(source) != nil {
		source = "unknown"
	}
	subj, err := topology.DeadLetterSubject(stage, source)
	if err != nil {
		return nil, fmt.Errorf("dead-letter subject: %w", err)
	}
	h := nats.Header{}
	h.Set(headers.Error, oneLine(cause.Error(), maxErrorHeader))
	h.Set(headers.Stage, stage)
	h.Set(headers.DeliveryCount, strconv.FormatUint(rec.Delivered, 10))
	h.Set(headers.OriginalSubject, rec.Subject)
	h.Set(headers.Source, source)
	if rec.ID != "" {
		h.Set(headers.OriginalMsgID, rec.ID)
	}
	h.Set(headers.MsgID, stage+"."+rec.Kind.Stream()+"."+strconv.FormatUint(rec.Seq, 10))
	return &nats.Msg{Subject: subj, Header: h, Data: rec.Data}, nil
}

// publishDeadLetters publishes the dead-letter records of recs and waits for
// JetStream to acknowledge each. It returns one error per record (nil when
// stored).
func publishDeadLetters(ctx context.Context, js jetstream.JetStream, stage string, recs []*Record, causes []error) []error {
	errs := make([]error, len(recs))
	futures := make([]jetstream.PubAckFuture, len(recs))
	for i, rec := range recs {
		msg, err := deadLetterMsg(stage, rec, causes[i])
		if err != nil {
			errs[i] = err
			continue
		}
		f, err := js.PublishMsgAsync(msg)
		if err != nil {
			errs[i] = fmt.Errorf("publish dead letter %s: %w", msg.Subject, err)
			continue
		}
		futures[i] = f
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
		case err := <-f.Err():
			errs[i] = fmt.Errorf("publish dead letter %s: %w", f.Msg().Subject, err)
		case <-ctx.Done():
			errs[i] = fmt.Errorf("publish dead letter %s: %w", f.Msg().Subject, ctx.Err())
		}
	}
	return errs
}

// oneLine makes s fit a header value: control characters become spaces, and
// it is cut to at most max bytes on a UTF-8 boundary.
func oneLine(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
