"""Compile now what the analysis otherwise compiles on first use.

Why: a CLI run compiles only the patterns its own dump needs (the culprit skip
tables of its crash class, for one); a batch's fork server imports this module
once so that every per-dump child it forks starts with all of them compiled.
"""

from __future__ import annotations

from kcrash.diagnosis.culprit import compile_all

compile_all()
