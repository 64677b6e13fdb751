#!/bin/sh
# As the official image does: the password from POSTGRES_PASSWORD_FILE (a Compose secret), the schema once.
set -e
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    initdb --username="$POSTGRES_USER" --pwfile="$POSTGRES_PASSWORD_FILE" --auth-local=trust \
           --auth-host=scram-sha-256 --no-sync -D "$PGDATA" >/dev/null
    echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=/tmp" -w start >/dev/null
    createdb -h /tmp -U "$POSTGRES_USER" "$POSTGRES_DB"
    psql -h /tmp -U "$POSTGRES_USER" -d "$POSTGRES_DB" -q \
         -c "CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)" \
         -c "INSERT INTO notes (body) SELECT 'note ' || n FROM generate_series(1, 20) n"
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec "$@" -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp -c fsync=off
