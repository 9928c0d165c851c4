# net.ipv4.conf.all.rp_filter=0
sysctl -q -w net.ipv4.conf.all.rp_filter=0
