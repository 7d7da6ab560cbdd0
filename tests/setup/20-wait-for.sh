# wait-for's end-to-end tests: the servers of 10-services.sh, plus what they start themselves
# (a throwaway PostgreSQL via initdb/pg_ctl run as postgres through runuser, a throwaway MariaDB
# via mariadb-install-db/mariadbd, redis-server with TLS and a load delay, nats-server,
# mosquitto + mosquitto_passwd) and openssl for the test CA and `openssl s_server`.
need_packages openssl util-linux postgresql mariadb-server redis-server nats-server mosquitto
