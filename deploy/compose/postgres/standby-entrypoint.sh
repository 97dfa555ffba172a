#!/bin/sh
# eu-west standby: clone the primary once, then run as a streaming standby.
set -e
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA" && chown postgres "$PGDATA" && chmod 700 "$PGDATA"
  until PGPASSWORD="$POSTGRES_PASSWORD" gosu postgres pg_basebackup -h pg-us-east -U postgres \
      -D "$PGDATA" -R -X stream -C -S eu_west_standby; do
    sleep 1
  done
fi
exec gosu postgres postgres -c cluster_name=pg-eu-west -c hot_standby=on
