// Package terminal is the live terminal view of `crowsnest run`: a sink that
// prints, every few seconds, one status line (events per second, total
// events, alerts, the consumers' lag) and every alert as it arrives, one
// readable line each:
//
//	10:15:05Z  events 12,345 (+412/s)  alerts 7  lag 0
//	2026-11-26T10:15:02Z HIGH      Exec into pod  payments/api-7f9c  user=alice@example.com  events=e1,e2  id=a1
//
// It is a sink like the others, fed by the same runner: a record is
// acknowledged once its line was written to the output. It colours the
// level when the output is a terminal (color: auto) and never otherwise, and
// it neutralises control characters in every value it prints, since alerts
// carry attacker-controlled strings (user names, pod names) that must not
// drive the terminal.
//
// With show_events it also prints one line per event (a debugging aid; at
// thousands of events a second it is a firehose).
//
// A redelivered alert is printed again: a terminal cannot take a line back.
//
// This package must not read input or handle signals.
package terminal
