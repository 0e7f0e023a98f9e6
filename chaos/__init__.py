"""Fault injection, soak and scale-out tooling for CityData (`python -m chaos --help`).

Everything here runs against its OWN Kafka broker and PostgreSQL server (deploy/local/infra.sh
with a private CITYDATA_VAR and free ports), never the shared ones on 9092/5432: the faults kill
them with SIGKILL.
"""
