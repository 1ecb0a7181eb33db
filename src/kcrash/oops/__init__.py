"""kcrash.oops layer."""
