# wait-for's end-to-end tests: the servers of 10-services.sh, plus what they start themselves
# (throwaway PostgreSQL via initdb/pg_ctl run as postgres through runuser, redis-server,
# nats-server, mosquitto + mosquitto_passwd) and openssl for the test CA and s_server.
need_packages openssl util-linux postgresql redis-server nats-server mosquitto
