#!/bin/sh
# ap-south logical subscriber of the us-east publication.
set -e
psql -v ON_ERROR_STOP=1 -U postgres <<SQL
CREATE ROLE replag LOGIN PASSWORD '$REPLAG_PASSWORD' IN ROLE pg_monitor;
CREATE TABLE writes (id bigserial PRIMARY KEY, payload text, at timestamptz DEFAULT now());
CREATE SUBSCRIPTION ap_south_sub
  CONNECTION 'host=pg-us-east user=postgres password=$POSTGRES_PASSWORD dbname=postgres'
  PUBLICATION demo_pub;
SQL
