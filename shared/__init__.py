"""Common code of the Werkbrug services: configuration, events, outbox, consumer, web pieces."""
