# net.ipv4.conf.all.accept_source_route=1
sysctl -q -w net.ipv4.conf.all.accept_source_route=1
