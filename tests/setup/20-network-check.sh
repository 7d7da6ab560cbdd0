# network-check: network namespaces (iproute2), packet drops inside them (nftables), a DNS server
# (dnsmasq), test certificates and a TLS server (openssl CLI), setpriv (util-linux) to run as an
# unprivileged user, and the tools the benchmark compares with (busybox, curl, dig).
need_packages iproute2 nftables dnsmasq-base openssl util-linux busybox curl dnsutils
