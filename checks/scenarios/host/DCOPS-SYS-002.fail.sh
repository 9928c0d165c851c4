# net.ipv4.conf.all.send_redirects=1
sysctl -q -w net.ipv4.conf.all.send_redirects=1
