"""kcrash.target layer."""
