# run-migrations: the real sql-migrate (Debian) that the sql-migrate format tests compare with
# (bench/run-migrations.sh uses it too).
need_packages sql-migrate
