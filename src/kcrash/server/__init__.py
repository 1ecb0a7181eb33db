"""kcrash server: collect, bucket and track kernel crashes from a fleet (issue 16)."""
