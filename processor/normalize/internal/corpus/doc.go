// Package corpus locates the third-party test corpora (../shared/corpora
// beside the checkout, or $CROWSNEST_CORPORA) for the normalizer tests, and
// skips the calling test with a clear message when they are absent — a
// user's clone has no ../shared. Test support only: it must not be imported
// by production code, and it never copies corpus files into the repository.
package corpus
