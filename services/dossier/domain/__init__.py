"""The dossier service's pure domain: no I/O, no gRPC, no SQL.

`calendar` holds the Vietnamese working-day calendar that dossier deadlines are counted on.
"""
