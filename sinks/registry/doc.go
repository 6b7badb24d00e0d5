// Package registry lists every sink crowsnest ships, in one place: adding a
// sink is one folder plus one line in Factories.
//
// It must not create sinks or read configuration; it only names factories.
package registry
