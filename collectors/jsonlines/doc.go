// Package jsonlines ships any tool's JSON lines — Tetragon's JSON export,
// an application's structured log — to a declared source's raw stream,
// from files (followed across rotation with a durable checkpoint,
// collectors/internal/filetail), from standard input, or over HTTP(S)
// (POSTed JSON lines, a JSON array or one object; answered 200 only after
// every record is acknowledged, like the other push sources).
//
// Each line must be a JSON object; anything else is dead-lettered. Its
// message id is the value of the declared id field (gjson path) as
// "<source>-<value>", or msgid.FromContent of the line when no id field is
// declared or the line lacks it.
//
// It must not interpret the records: the declared source's mapper in the
// processor does.
package jsonlines
