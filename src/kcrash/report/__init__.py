"""kcrash.report layer."""
