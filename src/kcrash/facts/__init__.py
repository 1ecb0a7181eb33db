"""kcrash.facts layer."""
