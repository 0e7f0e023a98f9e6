"""The gRPC face of the dossier service: the servicer, the bulk importer, request parsing and proto mapping."""
