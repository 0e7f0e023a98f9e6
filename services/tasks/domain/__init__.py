"""The tasks service's rules: directives and their tasks, petitions and their time limits, KPIs.

Pure: no I/O, no gRPC, no SQL. Commands take the record and the instant (the clock is the
caller's) and return the changed record with exactly one domain event and one history step.
"""
