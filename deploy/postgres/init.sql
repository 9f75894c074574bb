-- One PostgreSQL server, one database per service (the workspace has its own: sessions, sign-in
-- throttling) plus the shared registry (tenants, hashed API keys and people). Each service owns its
-- schema through its own migrations, so no service can join across another service's tables.
--
-- The postgres image runs this once, as POSTGRES_USER, when it initialises an empty data directory;
-- the databases are therefore owned by that user. Operators of a managed server run it by hand.

CREATE DATABASE candidate;
CREATE DATABASE vacancy;
CREATE DATABASE matching;
CREATE DATABASE notification;
CREATE DATABASE workspace;
CREATE DATABASE registry;
