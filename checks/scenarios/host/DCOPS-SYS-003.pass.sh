# net.ipv4.conf.all.accept_source_route=0 (the hardened value)
sysctl -q -w net.ipv4.conf.all.accept_source_route=0
