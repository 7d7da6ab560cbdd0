# restore / backup: moto's S3 server (`moto[server]`, run on a loopback port by tests/moto: no
# S3-compatible server is packaged for Debian or PyPI), boto3 (seeding and inspecting buckets),
# sqlite3 (the corrupt-data cases), python3's http.server (the http(s):// source).
# bench/restore.sh also compares with the AWS CLI (`awscli` from PyPI) and curl | tar.
need_packages sqlite3 tar zstd curl time
python3 -m pip --version >/dev/null 2>&1 || need_packages python3-pip
python3 -c 'import moto.server, boto3, flask' 2>/dev/null || need_pip 'moto[server]'
