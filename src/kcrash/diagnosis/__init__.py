"""kcrash.diagnosis layer."""
