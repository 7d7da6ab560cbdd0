# run-migrations: the end-to-end tests read SQLite files with the sqlite3 client
# (PostgreSQL and MariaDB and their clients come from 10-services.sh).
need_packages sqlite3
