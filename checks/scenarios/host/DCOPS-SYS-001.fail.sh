# net.ipv4.conf.all.accept_redirects=1
sysctl -q -w net.ipv4.conf.all.accept_redirects=1
