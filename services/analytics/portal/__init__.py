"""National Public Service Portal sync: `python -m services.analytics.portal run|reconcile|requeue`."""
