# The real servers the end-to-end tests talk to: installed from Debian if missing, started if
# not running, reused if already up. Addresses are the defaults the tests expect.

ensure_service() { # NAME PORT START-COMMAND...
  local name=$1 port=$2; shift 2
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "$name: already running on :$port"
    return 0
  fi
  echo "$name: starting"
  "$@" >/dev/null 2>&1 || true
  wait_port 127.0.0.1 "$port" 90
}

# PostgreSQL (trust auth for local connections, databases test, root, postgres)
need_packages postgresql postgresql-client
# The tests connect over TCP to 127.0.0.1 as root, postgres and roles of their own, with no
# password. Debian's default is scram-sha-256 on loopback and peer on the socket, so say what the
# tests need explicitly, first in pg_hba.conf (the first matching line wins), once.
pg_version=$(ls /etc/postgresql | sort -V | tail -1)
pg_hba=/etc/postgresql/$pg_version/main/pg_hba.conf
if ! grep -q '^# initbox tests: BEGIN' "$pg_hba"; then
  echo "postgresql: trust on loopback for the tests ($pg_hba)"
  { printf '# initbox tests: BEGIN (tests/setup/10-services.sh; a test machine only)\n'
    printf 'local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n'
    printf '# initbox tests: END\n'
    cat "$pg_hba"; } > "$pg_hba.initbox" && cat "$pg_hba.initbox" > "$pg_hba" && rm -f "$pg_hba.initbox"
  pg_ctlcluster --skip-systemctl-redirect "$pg_version" main reload >/dev/null 2>&1 || true
fi
ensure_service postgresql 5432 bash -c "pg_ctlcluster --skip-systemctl-redirect $pg_version main start"
for db in test root; do
  su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='$db'\"" | grep -q 1 \
    || su postgres -c "createdb $db" >/dev/null
done
su postgres -c "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname='root'\"" | grep -q 1 \
  || su postgres -c "createuser -s root" >/dev/null

# MariaDB (root with an empty password, database test). Debian's configuration does not name the
# server's user, and mariadbd refuses to run as root: --user=mysql.
need_packages mariadb-server mariadb-client
mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
ensure_service mariadb 3306 start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
# The tests log in over TCP as root with an empty password; Debian's root has unix_socket auth
# only. Configure it explicitly (over the socket, as the OS root) when TCP login is refused.
if ! mariadb -uroot -h127.0.0.1 -e 'SELECT 1' >/dev/null 2>&1; then
  echo "mariadb: root over TCP with an empty password, for the tests"
  mariadb -uroot <<'SQL'
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD('');
ALTER USER 'root'@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD('');
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('');
FLUSH PRIVILEGES;
SQL
  mariadb -uroot -h127.0.0.1 -e 'SELECT 1' >/dev/null
fi
mariadb -uroot -e "CREATE DATABASE IF NOT EXISTS test"

# Redis
need_packages redis-server
mkdir -p /var/lib/redis /var/log/redis
ensure_service redis 6379 redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log

# RabbitMQ (guest/guest)
need_packages rabbitmq-server
ensure_service rabbitmq 5672 rabbitmq-server -detached

# Mosquitto
need_packages mosquitto
# Debian's configuration writes a pid file and a log under directories systemd would create.
mkdir -p /run/mosquitto /var/log/mosquitto
chown mosquitto: /run/mosquitto /var/log/mosquitto 2>/dev/null || true
ensure_service mosquitto 1883 mosquitto -d -c /etc/mosquitto/mosquitto.conf

# NATS with JetStream
need_packages nats-server
mkdir -p /var/lib/nats-server
ensure_service nats 4222 start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
