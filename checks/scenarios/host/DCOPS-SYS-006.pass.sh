# net.ipv4.conf.all.log_martians=1 (the hardened value)
sysctl -q -w net.ipv4.conf.all.log_martians=1
