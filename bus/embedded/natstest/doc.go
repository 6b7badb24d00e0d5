// Package natstest starts an embedded NATS server with JetStream for tests,
// on a random port with its data in t.TempDir, and stops it when the test
// ends. Tests in every module use it instead of a fake JetStream. NewPKI
// makes throw-away certificates for TLS tests.
//
// It must only be imported from _test.go files.
package natstest
