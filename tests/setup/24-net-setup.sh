# net-setup: network namespaces and veth pairs (iproute2), `nft list ruleset` to compare with
# --dry-run (nftables), setpriv/unshare to drop NET_ADMIN and mount /proc/sys read-only
# (util-linux), and the peers of bench/net-setup.sh (iptables-restore, both flavours).
need_packages iproute2 nftables util-linux iptables
