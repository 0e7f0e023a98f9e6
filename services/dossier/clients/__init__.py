"""Other services' stubs the dossier service calls (registry applicants, signing seals): contracts only."""
