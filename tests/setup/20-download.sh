# download: the real tools that write what users publish and download: coreutils' sha256sum
# (checksums files), tar + zstd + zip (archives), minisign (detached signatures), openssl (the
# test CA), python3 (hostile archives with tarfile/zipfile); moto's S3 server comes with
# 20-restore.sh. bench/download.sh compares with curl | sha256sum.
need_packages coreutils tar zstd zip minisign openssl curl python3
python3 -c 'import moto.server, boto3, flask' 2>/dev/null || need_pip 'moto[server]'
