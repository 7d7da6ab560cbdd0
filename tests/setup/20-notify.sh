# notify: a real SMTP server (aiosmtpd, started per test by tests/fixtures/notify/smtp_server.py)
# and the openssl CLI to make the test CA and server certificate.
need_packages openssl
need_pip aiosmtpd
