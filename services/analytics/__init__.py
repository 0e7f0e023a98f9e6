"""Analytics: the National Public Service Portal sync (the quarter simulator lives in tools/simulate)."""
