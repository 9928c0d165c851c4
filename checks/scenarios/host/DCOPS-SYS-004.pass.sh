# net.ipv4.conf.all.rp_filter=1 (the hardened value)
sysctl -q -w net.ipv4.conf.all.rp_filter=1
