"""The gateway's rules, free of I/O: access policy, rate limits and the audit hash chain."""
