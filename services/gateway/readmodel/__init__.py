"""The gateway's read model of the common database: citizens, businesses, dossiers, signed
documents and dossier KPIs, projected from the registry, dossier and signing events."""
