"""kcrash.commands layer."""
