# fetch-secret: moto (AWS Secrets Manager / SSM / STS emulator, run in server mode on loopback by
# the tests), openssl (test certificates for the TLS stand-in Vault), curl (benchmark baseline).
# The stand-in Vault and Kubernetes API servers are Python files under tests/fixtures/fetch-secret/.
need_packages openssl curl jq time
python3 -m pip --version >/dev/null 2>&1 || need_packages python3-pip
python3 -c 'import moto.server, boto3, flask' 2>/dev/null || need_pip 'moto[server]'
# python-dotenv: the dotenv output is read back by it (and by docker compose's env_file rules).
python3 -c 'import dotenv' 2>/dev/null || need_pip python-dotenv
