package ingress

import (
	"context"
	"net/http/httptrace"
)

// httptraceLocalAddr records the local address of the connection a request
// uses, so a test can tell that requests shared one connection.
func httptraceLocalAddr(ctx context.Context, into *string) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { *into = info.Conn.LocalAddr().String() },
	})
}
