#!/bin/sh
# us-east primary: the monitoring role, a table, a publication, and access
# for the standby and the subscriber.
set -e
psql -v ON_ERROR_STOP=1 -U postgres <<SQL
CREATE ROLE replag LOGIN PASSWORD '$REPLAG_PASSWORD' IN ROLE pg_monitor;
CREATE TABLE writes (id bigserial PRIMARY KEY, payload text, at timestamptz DEFAULT now());
CREATE PUBLICATION demo_pub FOR TABLE writes;
SQL
echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
