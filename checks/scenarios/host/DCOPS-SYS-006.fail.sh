# net.ipv4.conf.all.log_martians=0
sysctl -q -w net.ipv4.conf.all.log_martians=0
