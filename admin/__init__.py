"""What composes the services: the ``werkbrug`` admin command line and the demo data of a local run."""
