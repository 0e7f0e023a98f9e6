"""Analytics: the Q1/2022 quarter simulator and the national public-service portal sync."""
